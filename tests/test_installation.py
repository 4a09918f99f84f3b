"""Many workspaces end to end: OAuth installs through the real WSGI app of `moment serve` (in this process;
Bolt's OAuth flow with slack_sdk's SQLAlchemy stores on our database), each workspace answered with its own
token, refused states, uninstalls, workspace isolation, and Slack Connect outsiders. Only Slack is replaced: the
stand-in implements oauth.v2.access and records the token of every call.
"""

from __future__ import annotations

import re
import time

import pytest
import requests
from sqlalchemy import func, select, text

from assistant.db.models import AuditEvent, Interaction, Mentor, MentorRequest, QuestionFollower, Vote
from assistant.slack import blocks as ui
from assistant.slack.installation import BOT_SCOPES
from assistant.slack.workspaces import OUTSIDER_NOTE
from slackstub import payloads as P
from slackstub.api import Workspace
from tests.slack_fixtures import ROOT
from tests.test_slack_app import VPN_QUESTION, assert_stays, db_session, section_texts

# The fast tier (`make test-fast`) keeps a few tests of this module, on SQLite; the rest are slow.

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "oauth-client-secret-for-tests"
ACME = Workspace(team_id="T0ACME0001", team_name="Acme", installer="U0ACMEADM1")
BETA = Workspace(team_id="T0BETA0001", team_name="Beta", installer="U0BETAADM1")


@pytest.fixture(scope="module")
def server(module_moment_app, module_database_url, slack_api):
    slack_api.client_id, slack_api.client_secret = CLIENT_ID, CLIENT_SECRET
    env = {
        "SLACK_BOT_TOKEN": None,  # no single token: OAuth installs
        "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "MOMENT_BASE_URL": "https://moment.example.com",
    }
    return module_moment_app(module_database_url, env=env)


@pytest.fixture(scope="module")
def tokens(server, slack_api) -> dict[str, str]:
    """ACME and BETA installed through the OAuth endpoints: team id -> the bot token Slack issued."""
    return {w.team_id: install(server, slack_api, w) for w in (ACME, BETA)}


def start_install(server) -> tuple[requests.Session, str, str]:
    """The installer's browser opens /slack/install: (its session, the Add to Slack URL, the state)."""
    browser = requests.Session()
    page = browser.get(server.url + "/slack/install", timeout=10)
    assert page.status_code == 200, page.text
    # The state cookie is `Secure` (Moment runs behind https): this browser sends it back over loopback http.
    cookie = page.headers["Set-Cookie"].split(";", 1)[0]
    assert "Secure" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    browser.headers["Cookie"] = cookie
    url = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page.text).group(1).replace("&amp;", "&")
    return browser, url, re.search(r"state=([^&]+)", url).group(1)


def install(server, slack_api, workspace: Workspace) -> str:
    browser, url, state = start_install(server)
    assert f"client_id={CLIENT_ID}" in url and "scope=" + ",".join(BOT_SCOPES) + "&" in url
    code = slack_api.expect_install(workspace)  # the installer approved it in Slack, which redirects back
    done = browser.get(f"{server.url}/slack/oauth_redirect", params={"code": code, "state": state}, timeout=30)
    assert done.status_code == 200, done.text
    exchange = slack_api.wait_for("oauth.v2.access", lambda c: c.params.get("code") == code)
    assert exchange.ok
    return exchange.response["access_token"]


def bots(url: str, team_id: str) -> int:
    """Bot tokens stored for the workspace (slack_sdk's installation store table)."""
    with db_session(url) as session:
        return session.scalar(text("SELECT count(*) FROM slack_bots WHERE team_id = :t"), {"t": team_id})


def uninstall_audit(url: str, team_id: str) -> list[AuditEvent]:
    with db_session(url) as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == "app_uninstalled", AuditEvent.team_id == team_id)
            ).all()
        )


def dm(server, team: str, user: str, question: str) -> dict:
    event = P.im_message(question, user=user, team=team)
    assert server.sender.event(P.event_callback(event, team_id=team)).status_code == 200
    return event


def moment(server, slack_api, team: str, user: str, command: str):
    url = slack_api.response_url()
    fields = P.slash_command(
        command, user=user, channel="C0ADMINS01", response_url=url, command="/moment", team_id=team
    )
    assert server.sender.command(fields).status_code == 200
    return slack_api.wait_for("response_url", lambda c: c.params["response_url_id"] == url.rsplit("/", 1)[-1])


def reply_text(call) -> str:
    return (call.params.get("text") or "") + section_texts(call.params.get("blocks") or [])


# --- installing ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_workspaces_installed_through_oauth_are_each_answered_with_their_own_token(server, slack_api, tokens):
    since = time.time()
    assert tokens[ACME.team_id] != tokens[BETA.team_id]
    assert bots(server.database_url, ACME.team_id) == 1 and bots(server.database_url, BETA.team_id) == 1
    for workspace in (ACME, BETA):
        user = P.uid()
        dm(server, workspace.team_id, user, VPN_QUESTION)
        answer = slack_api.wait_for("chat.postMessage", lambda c, u=user: c.params.get("channel") == P.dm_channel(u))
        assert answer.token == tokens[workspace.team_id]
        assert "Reset a VPN hardware token" in answer.text()
    with db_session(server.database_url) as session:
        teams = set(session.scalars(select(Interaction.team_id)).all())
        installs = [a.team_id for a in session.scalars(select(AuditEvent).where(AuditEvent.action == "app_installed"))]
    assert teams == {ACME.team_id, BETA.team_id}
    assert sorted(installs) == [ACME.team_id, BETA.team_id]
    # Nothing Moment sent to Slack went with a token but the two it was given.
    sent = {c.token for c in slack_api.calls() if c.time >= since and c.method != "oauth.v2.access"}
    assert sent == set(tokens.values())


def test_a_wrong_or_reused_state_is_refused_and_nothing_is_stored(server, slack_api, tokens):
    stranger = Workspace(team_id="T0STRANGE1", team_name="Stranger")
    browser, _, state = start_install(server)
    code = slack_api.expect_install(stranger)
    wrong = browser.get(f"{server.url}/slack/oauth_redirect", params={"code": code, "state": state + "x"}, timeout=30)
    assert wrong.status_code >= 400
    elsewhere = requests.get(f"{server.url}/slack/oauth_redirect", params={"code": code, "state": state}, timeout=30)
    assert elsewhere.status_code >= 400  # the right state from another browser (no state cookie)
    assert not slack_api.calls("oauth.v2.access", lambda c: c.params.get("code") == code)

    done = browser.get(f"{server.url}/slack/oauth_redirect", params={"code": code, "state": state}, timeout=30)
    assert done.status_code == 200
    again = browser.get(f"{server.url}/slack/oauth_redirect", params={"code": code, "state": state}, timeout=30)
    assert again.status_code >= 400  # a state is good once
    assert len(slack_api.calls("oauth.v2.access", lambda c: c.params.get("code") == code)) == 1
    assert bots(server.database_url, stranger.team_id) == 1
    forged = requests.get(f"{server.url}/slack/oauth_redirect", params={"code": "made-up", "state": "made-up"})
    assert forged.status_code >= 400 and bots(server.database_url, "T0FORGED01") == 0


# --- isolation ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_workspaces_never_see_each_others_mentors_reports_or_settings(server, slack_api, tokens):
    acme_admin, beta_admin = ACME.installer, BETA.installer  # whoever installs is the workspace's admin
    mentor = P.uid()
    added = moment(server, slack_api, ACME.team_id, acme_admin, f"mentor add <@{mentor}> vpn, remote access")
    assert "is a mentor for vpn, remote access" in added.params["text"]
    channel = P.uid("C")
    slack_api.bot_channels.add(channel)
    assert (
        "help channel"
        in moment(server, slack_api, ACME.team_id, acme_admin, f"channel add <#{channel}|it-help>").params["text"]
    )

    assert mentor in reply_text(moment(server, slack_api, ACME.team_id, acme_admin, "mentors"))
    assert mentor not in reply_text(moment(server, slack_api, BETA.team_id, beta_admin, "mentors"))
    assert channel in moment(server, slack_api, ACME.team_id, acme_admin, "channel list").params["text"]
    assert channel not in moment(server, slack_api, BETA.team_id, beta_admin, "channel list").params["text"]
    # Another workspace's admin is nobody here.
    refused = moment(server, slack_api, ACME.team_id, beta_admin, "report")
    assert "for Moment admins" in refused.params["text"]

    beta_posts = len(slack_api.calls("chat.postMessage", lambda c: c.token == tokens[BETA.team_id]))
    for _ in range(2):
        dm(server, BETA.team_id, P.uid(), "how do i claim mileage for my own car")
    slack_api.wait_for("chat.postMessage", lambda c: c.token == tokens[BETA.team_id], count=beta_posts + 2)
    with db_session(server.database_url) as session:
        expected = {
            team: session.scalar(select(func.count()).select_from(Interaction).where(Interaction.team_id == team))
            for team in (ACME.team_id, BETA.team_id)
        }
        mentors = {(m.team_id, m.slack_id) for m in session.scalars(select(Mentor))}
    assert (ACME.team_id, mentor) in mentors and (BETA.team_id, mentor) not in mentors
    assert expected[ACME.team_id] != expected[BETA.team_id]
    for team, admin in ((ACME.team_id, acme_admin), (BETA.team_id, beta_admin)):
        report = reply_text(moment(server, slack_api, team, admin, "report"))
        assert re.search(rf"\*{expected[team]}\* questions? from", report), report


# --- Slack Connect ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_slack_connect_outsiders_get_a_polite_note_and_nothing_internal(server, slack_api, tokens):
    shared = P.uid("C")
    outsider = P.uid()
    since = time.time()
    mention = P.app_mention(VPN_QUESTION, user=outsider, channel=shared, team=ACME.team_id, user_team="T0OTHERORG")
    assert server.sender.event(P.event_callback(mention, team_id=ACME.team_id, ext_shared=True)).status_code == 200
    note = slack_api.wait_for("chat.postEphemeral", lambda c: c.params.get("user") == outsider)
    assert OUTSIDER_NOTE in note.text() and "VPN" not in note.text()
    # An unasked question from outside in a shared channel: silence.
    said = P.channel_message(
        VPN_QUESTION + "?", user=outsider, channel=shared, team=ACME.team_id, user_team="T0OTHERORG"
    )
    assert server.sender.event(P.event_callback(said, team_id=ACME.team_id, ext_shared=True)).status_code == 200

    insider = P.uid()
    mine = P.app_mention(VPN_QUESTION, user=insider, channel=shared, team=ACME.team_id, user_team=ACME.team_id)
    assert server.sender.event(P.event_callback(mine, team_id=ACME.team_id, ext_shared=True)).status_code == 200
    private = slack_api.wait_for("chat.postEphemeral", lambda c: c.params.get("user") == insider)
    assert "Reset a VPN hardware token" in private.text()  # ours are answered, privately
    assert_stays(slack_api, "chat.postMessage", lambda c: c.params.get("channel") == shared and c.time >= since)
    for call in slack_api.calls():
        if call.time >= since and outsider in str(call.params):
            assert "Reset a VPN" not in call.text() and call.method == "chat.postEphemeral"


@pytest.mark.slow
def test_a_workspaces_admins_add_admins_of_that_workspace_only(server, slack_api, tokens):
    colleague = P.uid()
    assert "for Moment admins" in moment(server, slack_api, ACME.team_id, colleague, "status").params["text"]
    added = moment(server, slack_api, ACME.team_id, ACME.installer, f"admin add <@{colleague}>")
    assert "is now a Moment admin of this workspace" in added.params["text"]
    assert "for Moment admins" not in reply_text(moment(server, slack_api, ACME.team_id, colleague, "mentors"))
    assert "for Moment admins" in moment(server, slack_api, BETA.team_id, colleague, "mentors").params["text"]
    listed = moment(server, slack_api, ACME.team_id, colleague, "admin list").params["text"]
    assert f"<@{colleague}>" in listed and f"<@{ACME.installer}>" in listed
    assert f"<@{colleague}>" not in moment(server, slack_api, BETA.team_id, BETA.installer, "admin list").params["text"]
    moment(server, slack_api, ACME.team_id, ACME.installer, f"admin remove <@{colleague}>")
    assert "for Moment admins" in moment(server, slack_api, ACME.team_id, colleague, "mentors").params["text"]


@pytest.mark.slow
def test_people_of_another_installed_workspace_cannot_act_on_this_ones_answers(server, slack_api, tokens):
    asker = P.uid()
    dm(server, ACME.team_id, asker, VPN_QUESTION)
    slack_api.wait_for("chat.postMessage", lambda c: c.params.get("channel") == P.dm_channel(asker))
    with db_session(server.database_url) as session:
        acme_answer = session.scalars(select(Interaction).where(Interaction.user_id == asker)).one()
    stranger = P.uid()
    for action in (ui.VOTE_HELPFUL, ui.ASK_MENTOR, ui.SAME_QUESTION):
        click = P.block_actions(
            action_id=action, value=str(acme_answer.id), user=stranger, channel=P.uid("C"),
            response_url=slack_api.response_url(), team_id=BETA.team_id,
        )  # fmt: skip
        assert server.sender.interaction(click).status_code == 200
    time.sleep(2.0)
    with db_session(server.database_url) as session:
        assert session.scalars(select(Vote).where(Vote.interaction_id == acme_answer.id)).all() == []
        assert session.scalars(select(MentorRequest).where(MentorRequest.asker_id == stranger)).all() == []
        assert session.scalars(select(QuestionFollower).where(QuestionFollower.user_id == stranger)).all() == []


@pytest.mark.slow
def test_single_token_mode_refuses_commands_and_clicks_from_another_organisation(moment_app, database_url, slack_api):
    server = moment_app(database_url)  # one token, one workspace (the stand-in's)
    outsider, channel = P.uid(), P.uid("C")
    url = slack_api.response_url()
    ask = P.slash_command(VPN_QUESTION, user=outsider, channel=channel, response_url=url, team_id="T0OTHERORG")
    response = server.sender.command(ask)
    assert response.status_code == 200 and OUTSIDER_NOTE in response.text
    ours = P.slash_command(VPN_QUESTION, user=P.uid(), channel=channel, response_url=slack_api.response_url())
    assert server.sender.command(ours).text == ""  # a person of the workspace: acknowledged, answered after
    slack_api.wait_for("chat.postEphemeral", lambda c: c.params.get("channel") == channel)
    assert_stays(slack_api, "chat.postEphemeral", lambda c: c.params.get("user") == outsider)
    assert not slack_api.calls("response_url", lambda c: c.params.get("response_url_id") == url.rsplit("/", 1)[-1])


# --- Enterprise Grid ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_org_wide_grid_install_answers_every_workspace_of_the_org_as_one(server, slack_api, tokens):
    org = Workspace(
        team_id=None, team_name="", enterprise_id="E0GRID0001", enterprise_name="Grid Org",
        installer="U0GRIDADM1", is_enterprise_install=True,
    )  # fmt: skip
    token = install(server, slack_api, org)
    for workspace in ("T0GRIDWSA1", "T0GRIDWSB1"):  # two workspaces of the org
        user = P.uid()
        event = P.im_message(VPN_QUESTION, user=user, team=workspace)
        body = P.event_callback(event, team_id=workspace, enterprise_id=org.enterprise_id, is_enterprise_install=True)
        assert server.sender.event(body).status_code == 200
        answer = slack_api.wait_for("chat.postMessage", lambda c, u=user: c.params.get("channel") == P.dm_channel(u))
        assert answer.token == token
    with db_session(server.database_url) as session:
        rows = session.scalars(select(Interaction).where(Interaction.enterprise_id == org.enterprise_id)).all()
    assert len(rows) == 2 and {r.team_id for r in rows} == {org.enterprise_id}
    # The org's installer administers the org, from any of its workspaces.
    url = slack_api.response_url()
    fields = P.slash_command("mentors", user=org.installer, channel="C0GRIDADM1", response_url=url,
                             command="/moment", team_id="T0GRIDWSA1")  # fmt: skip
    fields.update(enterprise_id=org.enterprise_id, is_enterprise_install="true")
    assert server.sender.command(fields).status_code == 200
    reply = slack_api.wait_for("response_url", lambda c: c.params["response_url_id"] == url.rsplit("/", 1)[-1])
    assert "for Moment admins" not in reply_text(reply)


# --- uninstalling ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_uninstall_deletes_the_tokens_at_once_and_stops_every_call_for_that_workspace(server, slack_api, tokens):
    gone = Workspace(team_id="T0LEAVING1", team_name="Leaving", installer="U0LEAVADM1")
    token = install(server, slack_api, gone)
    user = P.uid()
    dm(server, gone.team_id, user, VPN_QUESTION)
    assert (
        slack_api.wait_for("chat.postMessage", lambda c: c.params.get("channel") == P.dm_channel(user)).token == token
    )

    uninstalled = P.event_callback(P.app_uninstalled(), team_id=gone.team_id)
    assert server.sender.event(uninstalled).status_code == 200
    slack_api.revoke(token)  # Slack stops honouring it too
    deadline = time.monotonic() + 10
    while bots(server.database_url, gone.team_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert bots(server.database_url, gone.team_id) == 0
    # The audit event is written after the tokens are deleted (in the same listener): wait for it too.
    while not (audit := uninstall_audit(server.database_url, gone.team_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(audit) == 1 and "tokens deleted" in audit[0].detail

    since = time.time()
    later = P.uid()
    dm(server, gone.team_id, later, VPN_QUESTION)  # Slack would not send it; a stray or replayed one
    mention = P.app_mention(VPN_QUESTION, user=later, channel=P.uid("C"), team=gone.team_id)
    server.sender.event(P.event_callback(mention, team_id=gone.team_id))
    time.sleep(2.5)
    after = [c for c in slack_api.calls() if c.time >= since]
    assert not [c for c in after if c.token == token], [c.method for c in after]
    assert not [c for c in after if later in str(c.params)]
    # The others are unaffected.
    other = P.uid()
    dm(server, ACME.team_id, other, VPN_QUESTION)
    reply = slack_api.wait_for("chat.postMessage", lambda c: c.params.get("channel") == P.dm_channel(other))
    assert reply.token == tokens[ACME.team_id]


@pytest.mark.slow
def test_tokens_revoked_deletes_the_bot_token(server, slack_api, tokens):
    revoked = Workspace(team_id="T0REVOKED1", team_name="Revoked", installer="U0REVADM01")
    install(server, slack_api, revoked)
    assert bots(server.database_url, revoked.team_id) == 1
    event = P.event_callback(P.tokens_revoked(), team_id=revoked.team_id)
    assert server.sender.event(event).status_code == 200
    deadline = time.monotonic() + 10
    while bots(server.database_url, revoked.team_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert bots(server.database_url, revoked.team_id) == 0


def oauth_worker_settings(server, slack_api, moment_content, tmp_path):
    """A worker's settings for the OAuth-installed server's database (no single token)."""
    from assistant.settings import load_settings

    return load_settings(
        home=tmp_path / "worker",
        database_url_override=server.database_url,
        index_dir_override=moment_content[1],
        content_dir=moment_content[0],
        slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET,
        base_url="https://moment.example.com",
        slack_api_url=slack_api.api_url,
    )


def test_the_worker_speaks_to_each_workspace_with_its_own_token_and_not_at_all_to_one_without(
    server, slack_api, tokens, moment_content, tmp_path
):
    from assistant import worker

    ctx = worker.setup(oauth_worker_settings(server, slack_api, moment_content, tmp_path))
    assert {ACME.team_id, BETA.team_id} <= set(ctx.teams())
    for team in (ACME.team_id, BETA.team_id):
        assert ctx.client_for(team).token == tokens[team]
    assert ctx.client_for("T0NEVERINS") is None
    ctx.service.database.dispose()


@pytest.mark.slow
def test_each_workspaces_admins_get_its_own_weekly_digest_with_its_own_token(
    server, slack_api, tokens, moment_content, tmp_path
):
    import datetime as dt

    from assistant import worker

    for workspace in (ACME, BETA):  # a question in each, so that each report has something of its own
        user = P.uid()
        dm(server, workspace.team_id, user, VPN_QUESTION)
        slack_api.wait_for("chat.postMessage", lambda c, u=user: c.params.get("channel") == P.dm_channel(u))
    ctx = worker.setup(oauth_worker_settings(server, slack_api, moment_content, tmp_path))
    now = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)  # a day no other test has claimed
    since = time.time()
    try:
        assert worker.weekly_digest(days=500, now=now)
        assert not worker.weekly_digest(days=500, now=now)  # once a day
    finally:
        ctx.service.database.dispose()
        worker._context = None
    for workspace in (ACME, BETA):
        posts = slack_api.calls(
            "chat.postMessage",
            lambda c, w=workspace: c.time >= since and c.params.get("channel") == P.dm_channel(w.installer),
        )
        assert len(posts) == 1 and posts[0].token == tokens[workspace.team_id]
        assert "Moment" in posts[0].text()


def test_manifest_asks_for_the_scopes_installs_ask_for_and_allows_org_wide_installs():
    import yaml

    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert tuple(manifest["oauth_config"]["scopes"]["bot"]) == BOT_SCOPES
    assert manifest["settings"]["org_deploy_enabled"] is True
    assert manifest["oauth_config"]["redirect_urls"] == ["https://moment.example.com/slack/oauth_redirect"]
