"""Mentors and admins end to end: the real WSGI app of `moment serve` (in this process) with signed Slack
requests, answering into the Web API stand-in (a web process picking up an index published by another host:
real `moment serve`); timers run by the worker's own job function; a real re-index after a draft is approved.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import textwrap
import time

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from assistant import worker
from assistant.access.tenancy import DEFAULT_TEAM
from assistant.db.database import Database
from assistant.db.models import AuditEvent, MentorOffer, MentorRequest
from assistant.settings import load_settings
from assistant.slack import blocks as answer_ui
from assistant.slack import mentor_blocks as ui
from slackstub import payloads as P
from tests.slack_fixtures import BOT_TOKEN, MODEL_CACHE, MOMENT

# The fast tier (`make test-fast`) keeps a few tests of this module, on SQLite; the rest are slow.

ASKER = "U0ASKER001"
ADMIN = "U0ADMIN001"
VPN_A, VPN_B, IT_DESK, PAYROLL = "U0VPNPRIYA", "U0VPNRAJ01", "U0ITDESK01", "U0PAYSAM01"
ESCALATION, LND = "C0ESCAL001", "C0LANDD001"
ALWAYS = 'working_hours: "00:00-24:00"\n    working_days: [mon, tue, wed, thu, fri, sat, sun]'
MENTORS = f"""
mentors:
  - slack_id: {VPN_A}
    name: Priya Natarajan
    topics: [vpn, remote access]
    {ALWAYS}
    vetted_on: 2026-05-14
  - slack_id: {VPN_B}
    name: Raj Mehta
    topics: [vpn, laptops]
    {ALWAYS}
    vetted_on: 2026-05-14
  - slack_id: {IT_DESK}
    name: Lee Chen
    topics: [it support, vpn tokens]
    {ALWAYS}
    vetted_on: 2026-05-14
  - slack_id: {PAYROLL}
    name: Sam Okafor
    topics: [payroll, payslips, overtime pay]
    {ALWAYS}
    vetted_on: 2026-05-14
"""
QUESTION = "vpn token shows error 42 after the firmware update what now"


@pytest.fixture
def deployment(moment_content, tmp_path, moment_app, database_url, slack_api):
    """A server with its own copy of the content and index (drafts get approved into them)."""
    content_dir, index_dir = tmp_path / "content", tmp_path / "index"
    shutil.copytree(moment_content[0], content_dir)
    shutil.copytree(moment_content[1], index_dir)
    (content_dir / "mentors.yml").write_text(textwrap.dedent(MENTORS), encoding="utf-8")
    slack_api.users.update({VPN_A: "Priya Natarajan", VPN_B: "Raj Mehta", IT_DESK: "Lee Chen", ASKER: "Ash Asker"})
    env = {
        "MOMENT_CONTENT_DIR": str(content_dir),
        "MOMENT_INDEX_DIR": str(index_dir),
        "MOMENT_ADMINS": ADMIN,
        "MOMENT_ESCALATION_CHANNEL": ESCALATION,
        "MOMENT_ADMIN_CHANNEL": LND,
        "MOMENT_MENTOR_MAX_ATTEMPTS": "3",
    }
    server = moment_app(database_url, env=env)
    settings = load_settings(
        home=tmp_path / "worker-home",
        content_dir=content_dir,
        index_dir_override=index_dir,
        database_url_override=database_url,
        model_cache_override=MODEL_CACHE,
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_api_url=slack_api.api_url,
        escalation_channel=ESCALATION,
        admin_channel=LND,
    )
    slack_api.clear()
    yield server, settings
    worker._context = None


def dm_channel_of(slack_api, user: str) -> str:
    return P.dm_channel(user)


def click(server, slack_api, user: str, call, action_id: str, *, channel: str | None = None, ephemeral=False):
    """Click the button `action_id` in the message posted by `call` (an ephemeral one: Slack sends the
    click back without the message)."""
    element = P.button(call.params.get("blocks"), action_id)
    assert element is not None, f"no {action_id} button in {call.params.get('blocks')}"
    payload = P.block_actions(
        action_id=action_id,
        value=element["value"],
        user=user,
        channel=channel or call.params["channel"],
        response_url=slack_api.response_url(),
        message=None if ephemeral else P.posted_message(call),
        ephemeral=ephemeral,
    )
    response = server.sender.interaction(payload)
    assert response.status_code == 200, response.text
    return payload


def offers_to(slack_api, mentor: str):
    channel = P.dm_channel(mentor)
    return slack_api.calls(
        "chat.postMessage", lambda c: c.params.get("channel") == channel and P.button(c.params.get("blocks"), ui.ACCEPT)
    )


def wait_offer(slack_api, mentor: str, count: int = 1):
    channel = P.dm_channel(mentor)
    return slack_api.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("channel") == channel and P.button(c.params.get("blocks"), ui.ACCEPT),
        count=count,
        timeout=30,
    )


def to_asker(slack_api, text: str, timeout: float = 30):
    channel = P.dm_channel(ASKER)
    return slack_api.wait_for(
        "chat.postMessage", lambda c: c.params.get("channel") == channel and text in c.text(), timeout=timeout
    )


def ask_and_request_mentor(server, slack_api, question: str = QUESTION):
    event = P.im_message(question, user=ASKER)
    assert server.sender.event(P.event_callback(event)).status_code == 200
    answer = slack_api.wait_for(
        "chat.postMessage",
        lambda c: (
            c.params.get("channel") == event["channel"] and P.button(c.params.get("blocks"), answer_ui.ASK_MENTOR)
        ),
        timeout=30,
    )
    click(server, slack_api, ASKER, answer, answer_ui.ASK_MENTOR)
    return answer


@pytest.mark.slow
def test_the_whole_hand_off_from_question_to_new_job_aid(deployment, slack_api):
    server, settings = deployment
    answer = ask_and_request_mentor(server, slack_api)
    shown = [
        line[1:]
        for block in answer.params["blocks"]
        if block.get("type") == "section"
        for line in block["text"]["text"].split("\n")
        if line.startswith(">") and len(line) > 20
    ]

    # 1. Offered to a mentor who knows VPN (never the payroll one), with the question and why them.
    knows_vpn = (VPN_A, VPN_B, IT_DESK)

    def offer_to_someone_new(seen: list[str]):
        call = slack_api.wait_for(
            "chat.postMessage",
            lambda c: (
                P.button(c.params.get("blocks"), ui.ACCEPT) is not None
                and c.params.get("channel") not in [P.dm_channel(m) for m in seen]
            ),
            timeout=30,
        )
        mentor = next(m for m in (*knows_vpn, PAYROLL) if call.params["channel"] == P.dm_channel(m))
        seen.append(mentor)
        return mentor, call

    seen: list[str] = []
    first_mentor, first = offer_to_someone_new(seen)
    assert first_mentor in knows_vpn
    assert QUESTION in first.text() and "You know" in first.text() and "vpn" in first.text()
    assert f"<@{ASKER}>" in first.text()
    assert not shown  # a decline: the asker saw titles only, and so does the mentor (see the test below)
    to_asker(slack_api, "I've asked")

    # 2. Declined: offered to the next one; the first offer's buttons are replaced.
    click(server, slack_api, first_mentor, first, ui.DECLINE)
    second_mentor, second = offer_to_someone_new(seen)
    assert second_mentor in knows_vpn
    slack_api.wait_for("chat.update", lambda c: c.params.get("channel") == P.dm_channel(first_mentor), timeout=20)
    to_asker(slack_api, "another mentor")

    # 3. No reply in time: the worker's deadline job offers it to the next one.
    worker.setup(settings)
    assert worker.mentor_deadlines(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=31))["timed_out"] == 1
    third_mentor, third = offer_to_someone_new(seen)
    assert sorted(seen) == sorted(knows_vpn) and not offers_to(slack_api, PAYROLL)

    # 4. Accepted: a group DM of asker and mentor opens with the context; the asker is told.
    click(server, slack_api, third_mentor, third, ui.ACCEPT)
    group = slack_api.wait_for("conversations.open", lambda c: set(c.params.get("users", "").split(",")) ==
                               {ASKER, third_mentor}, timeout=30)  # fmt: skip
    group_id = group.response["channel"]["id"]
    intro = slack_api.wait_for("chat.postMessage", lambda c: c.params.get("channel") == group_id, timeout=20)
    assert QUESTION in intro.text() and P.button(intro.params["blocks"], ui.RESOLVE)
    to_asker(slack_api, "is helping you")

    # A late click from the mentor who timed out gets a clear message, not the request.
    click(server, slack_api, second_mentor, second, ui.ACCEPT)
    refusal = slack_api.wait_for("chat.postEphemeral", lambda c: c.params.get("user") == second_mentor, timeout=20)
    assert "already accepted" in refusal.text()

    # 5. Resolved, then saved as a job-aid draft.
    click(server, slack_api, third_mentor, intro, ui.RESOLVE, channel=group_id)
    thanks = slack_api.wait_for(
        "chat.postMessage",
        lambda c: (
            c.params.get("channel") == P.dm_channel(third_mentor) and P.button(c.params.get("blocks"), ui.SAVE_DRAFT)
        ),
        timeout=20,
    )
    to_asker(slack_api, "marked your question resolved")
    click(server, slack_api, third_mentor, thanks, ui.SAVE_DRAFT)
    modal = slack_api.wait_for("views.open", timeout=20)
    answer_text = (
        "Error 42 after a firmware update means the token's clock drifted.\n1. Open the self-service portal.\n"
        "2. Choose Resync token and enter two codes in a row.\n3. Sign in to the VPN again."
    )
    submission = P.view_submission(
        modal.params["view"],
        user=third_mentor,
        values={ui.DRAFT_TITLE: {ui.DRAFT_TITLE: "Fix VPN token error 42 after a firmware update"},
                ui.DRAFT_BODY: {ui.DRAFT_BODY: answer_text}},
    )  # fmt: skip
    assert server.sender.interaction(submission).status_code == 200
    slack_api.wait_for("chat.postMessage", lambda c: c.params.get("channel") == LND and "draft" in c.text(), timeout=20)

    # 6. Only admins see and approve drafts.
    refused = server.sender.command(
        P.slash_command(
            "drafts", user=ASKER, channel="C0GENERAL", response_url=slack_api.response_url(), command="/moment"
        )
    )
    assert refused.status_code == 200
    slack_api.wait_for("response_url", lambda c: "for Moment admins" in c.text(), timeout=20)
    listing_url = slack_api.response_url()
    server.sender.command(P.slash_command("drafts", user=ADMIN, channel=LND, response_url=listing_url,
                                          command="/moment"))  # fmt: skip
    listing = slack_api.wait_for("response_url", lambda c: P.button(c.params.get("blocks"), ui.APPROVE_DRAFT),
                                 timeout=20)  # fmt: skip
    assert "Fix VPN token error 42" in listing.text()
    approve = P.button(listing.params["blocks"], ui.APPROVE_DRAFT)
    payload = P.block_actions(action_id=ui.APPROVE_DRAFT, value=approve["value"], user=ADMIN, channel=LND,
                              response_url=slack_api.response_url(), ephemeral=True)  # fmt: skip
    assert server.sender.interaction(payload).status_code == 200

    # 7. Re-indexed (in the web process: no worker is running), summary posted, and the same question
    #    is now answered from the new job aid.
    summary = slack_api.wait_for("chat.postMessage", lambda c: c.params.get("channel") == LND and
                                 "Re-index done" in c.text(), timeout=120)  # fmt: skip
    assert "1 added" in summary.text()
    assert list((settings.content_dir / "mentor-answers").glob("*.md"))  # written by the host that indexed
    event = P.im_message(QUESTION, user=ASKER)
    server.sender.event(P.event_callback(event))
    again = slack_api.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("channel") == event["channel"] and "Fix VPN token error 42" in c.text(),
        timeout=40,
    )
    assert "mentor-answers" in again.text() or "Fix VPN token error 42" in again.text()

    database = Database(settings.database_url)
    with database.session() as session:
        request = session.scalars(select(MentorRequest)).one()
        assert (request.status, request.owner_id) == ("resolved", third_mentor)
        outcomes = [o.outcome for o in session.scalars(select(MentorOffer).order_by(MentorOffer.id))]
        assert outcomes == ["declined", "timeout", "accepted"]
        assert session.scalars(select(AuditEvent).where(AuditEvent.allowed.is_(False))).all()
    database.dispose()


@pytest.mark.slow
def test_nobody_fits_so_the_question_goes_to_the_escalation_channel(deployment, slack_api):
    server, _ = deployment
    ask_and_request_mentor(server, slack_api, "how do i bake sourdough bread")
    escalated = slack_api.wait_for("chat.postMessage", lambda c: c.params.get("channel") == ESCALATION, timeout=30)
    assert "sourdough" in escalated.text() and P.button(escalated.params["blocks"], ui.ACCEPT)
    to_asker(slack_api, "L&D team")
    # A vetted mentor takes it from the channel.
    click(server, slack_api, PAYROLL, escalated, ui.ACCEPT)
    slack_api.wait_for("conversations.open", lambda c: PAYROLL in c.params.get("users", "") and
                       ASKER in c.params.get("users", ""), timeout=20)  # fmt: skip
    to_asker(slack_api, "is helping you")


def test_admin_commands_and_refusals(deployment, slack_api):
    server, _ = deployment

    def moment(text: str, user: str = ADMIN):
        url = slack_api.response_url()
        started = time.monotonic()
        response = server.sender.command(P.slash_command(text, user=user, channel=LND, response_url=url,
                                                         command="/moment"))  # fmt: skip
        assert response.status_code == 200 and time.monotonic() - started < 3  # acknowledged at once

    moment("help", user=ASKER)
    slack_api.wait_for("response_url", lambda c: "/moment reindex" in c.text(), timeout=20)
    slack_api.clear()
    moment("status", user=ASKER)
    refusal = slack_api.wait_for("response_url", lambda c: "for Moment admins" in c.text(), timeout=20)
    assert "/moment status" in refusal.text()

    slack_api.clear()
    moment("status")
    status = slack_api.wait_for("response_url", lambda c: "Moment status" in c.text(), timeout=30)
    assert "documents" in status.text() and "vetted mentors available now" in status.text()
    assert "Reader on: cross-encoder" in status.text()  # on by default

    slack_api.clear()
    moment("mentor add <@U0NEWMENT1|newbie> fleet, fuel cards")
    slack_api.wait_for("response_url", lambda c: "fleet, fuel cards" in c.text() and "Vet them" in c.text(), timeout=20)
    slack_api.clear()
    moment("mentor vet <@U0NEWMENT1>")
    slack_api.wait_for("response_url", lambda c: "is vetted" in c.text(), timeout=20)
    slack_api.clear()
    moment("mentor vet <@U0NOTAMENT>")  # the registry's refusal names the person as Slack shows people
    slack_api.wait_for("response_url", lambda c: "<@U0NOTAMENT> is not a mentor" in c.text(), timeout=20)
    slack_api.clear()
    moment("mentors")
    listing = slack_api.wait_for("response_url", lambda c: "Mentors (" in c.text(), timeout=20)
    assert "U0NEWMENT1" in listing.text() and VPN_A in listing.text()

    slack_api.clear()
    moment("report 7")
    slack_api.wait_for("response_url", lambda c: "the last 7 days" in c.text(), timeout=30)

    slack_api.clear()
    moment("reindex")
    slack_api.wait_for("response_url", lambda c: "Re-index queued" in c.text(), timeout=20)
    summary = slack_api.wait_for("chat.postMessage", lambda c: c.params.get("channel") == LND and
                                 "Re-index done" in c.text(), timeout=120)  # fmt: skip
    assert "Nothing changed" in summary.text()


@pytest.mark.slow
def test_a_new_index_reaches_a_web_process_that_shares_only_the_database(moment_content, moment_server,
                                                                          database_url, tmp_path):  # fmt: skip
    """Host B starts with no index at all; host A runs `moment index`; B serves A's version within a minute."""
    b_env = {"MOMENT_INDEX_DIR": str(tmp_path / "b-index"), "MOMENT_INDEX_SYNC_SECONDS": "1"}
    server_b = moment_server(database_url, healthy=False, env=b_env)
    assert server_b.healthz().status_code == 503
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MOMENT_", "DATABASE_URL"))}
    env.update(MOMENT_HOME=str(tmp_path / "a-home"), MOMENT_MODEL_CACHE=str(MODEL_CACHE), HF_HUB_OFFLINE="1",
               DATABASE_URL=database_url, MOMENT_CONTENT_DIR=str(moment_content[0]))  # fmt: skip
    done = subprocess.run([str(MOMENT), "index", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    import json

    version = json.loads(done.stdout)["version"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        health = server_b.healthz()
        if health.status_code == 200 and health.json().get("index_version") == version:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"host B never served {version}: {server_b.healthz().text}\n{server_b.log_tail()}")


def test_app_home_for_mentors_pause_and_resume_and_for_admins(deployment, slack_api):
    server, settings = deployment

    def home_of(user: str):
        slack_api.clear()
        server.sender.event(P.event_callback(P.app_home_opened(user=user)))
        return slack_api.wait_for("views.publish", lambda c: c.params.get("user_id") == user, timeout=30)

    home = home_of(VPN_A)
    assert "Mentoring" in home.text() and "Taking questions" in home.text()
    pause = next(
        b["accessory"] for b in home.params["view"]["blocks"] if b.get("accessory", {}).get("action_id") == ui.PAUSE
    )
    slack_api.clear()
    payload = P.block_actions(action_id=ui.PAUSE, value=pause["value"], user=VPN_A, channel=P.dm_channel(VPN_A),
                              response_url=slack_api.response_url())  # fmt: skip
    payload["container"] = {"type": "view", "view_id": "V0HOME0001"}
    payload["view"] = {"id": "V0HOME0001", "type": "home"}
    assert server.sender.interaction(payload).status_code == 200
    paused = slack_api.wait_for("views.publish", lambda c: c.params.get("user_id") == VPN_A, timeout=30)
    assert "Paused" in paused.text() and ui.RESUME in paused.text()
    database = Database(settings.database_url)
    with database.session() as session:
        from assistant.db.models import Mentor

        assert session.get(Mentor, (DEFAULT_TEAM, VPN_A)).paused
    database.dispose()

    assert "Mentoring" not in home_of(ASKER).text()  # not a mentor: no mentoring section
    admin_home = home_of(ADMIN)
    assert "Moment status" in admin_home.text() and "documents" in admin_home.text()


@pytest.mark.slow
def test_the_offer_quotes_the_passage_the_asker_was_shown():
    shown = [
        {"title": "Reset a VPN hardware token", "url": "https://kb.example/vpn#resync", "snippet": "1. Open <NW-Key>."},
        {"title": "VPN on field tablets", "url": "https://kb.example/tablet"},
    ]
    text = ui._shown(shown)
    lines = text.split("\n")
    assert lines[1].startswith("• *<https://kb.example/vpn#resync|Reset a VPN hardware token>*")
    assert lines[2] == ">1. Open &lt;NW-Key&gt;."  # quoted under its title, escaped
    assert "VPN on field tablets" in lines[3]
    assert "&gt;" not in ui._shown([{"title": "Only a title"}])


def test_the_notifier_needs_no_database_only_the_views_the_hand_off_gives_it():
    """Who was tried, what the mentor may see, the owner's name: all in the views. Nothing here but a Web
    API client pointed at the stand-in."""
    from dataclasses import replace

    from slack_sdk import WebClient

    from assistant.mentoring.notices import Notice
    from assistant.mentoring.views import OfferView, RequestView
    from assistant.slack.notifier import SlackNotifier
    from slackstub.api import SlackAPIStub

    passage = {"title": "Reset a VPN hardware token", "url": "https://kb.example/vpn", "snippet": "1. Open <NW-Key>."}
    request = RequestView(id=7, team_id=DEFAULT_TEAM, asker_id=ASKER, question="how do i resync my token",
                          status="offered", channel_id="C0HELPDESK", tried=(VPN_A, VPN_B),
                          shown=(passage,))  # fmt: skip
    with SlackAPIStub(token=BOT_TOKEN) as slack:
        client = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
        notifier = SlackNotifier(client, escalation_channel=ESCALATION, offer_minutes=30)

        channel, ts = notifier.offer(request, OfferView(id=3, mentor_id=VPN_B, reason="Knows vpn."))
        offer = slack.calls("chat.postMessage")[-1]
        assert (channel, ts) == (P.dm_channel(VPN_B), offer.response["ts"])
        assert f"<@{ASKER}> in <#C0HELPDESK> needs a hand" in offer.text() and "within 30 minutes" in offer.text()
        assert "Reset a VPN hardware token" in offer.text() and "1. Open &lt;NW-Key&gt;." in offer.text()
        assert P.button(offer.params["blocks"], ui.ACCEPT)["value"] == "7"

        notifier.offer_closed(OfferView(3, VPN_B, "Knows vpn.", channel, ts), request, "Another mentor took it.")
        closed = slack.calls("chat.update")[-1]
        assert (closed.params["channel"], closed.params["ts"]) == (channel, ts) and "Another mentor" in closed.text()
        notifier.offer_closed(OfferView(4, VPN_A, "Knows vpn."), request, "Never posted: nothing to update.")
        assert len(slack.calls("chat.update")) == 1

        notifier.escalate(request, "no mentor accepted")
        escalated = slack.calls("chat.postMessage", lambda c: c.params["channel"] == ESCALATION)[-1]
        assert f"Offered to: <@{VPN_A}>, <@{VPN_B}>." in escalated.text()

        taken = replace(request, status="accepted", owner_id=VPN_B, owner_name="Raj <Mehta>", shown=())
        assert notifier.connect(taken) == slack.calls("conversations.open")[-1].response["channel"]["id"]
        met = slack.calls("chat.postMessage")[-1]
        assert f"meet <@{VPN_B}> (Raj &lt;Mehta&gt;)" in met.text() and "found nothing close" in met.text()

        notifier.tell_asker(taken, Notice("{mentor} is helping you.", {"mentor": VPN_B}))
        assert f"<@{VPN_B}> is helping you." in slack.calls("chat.postMessage")[-1].text()
