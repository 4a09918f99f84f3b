"""Content audiences end to end: the real WSGI app of `moment serve` (in this process) answering signed Slack
requests, user groups read from the Web API stand-in over HTTP, the cache in SQLite or PostgreSQL, and the
real `moment ask --as`.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time

import pytest
from pydantic import SecretStr

from assistant import worker
from assistant.settings import load_settings
from assistant.slack import blocks as answer_ui
from assistant.slack import mentor_blocks as mentor_ui
from slackstub import payloads as P
from tests.slack_fixtures import BOT_TOKEN, MODEL_CACHE, MOMENT, MomentApps
from tests.test_audiences import GRIEVANCE_QUESTION as QUESTION
from tests.test_audiences import MANAGERS_TITLE as RESTRICTED_TITLE
from tests.test_audiences import PUBLIC_TITLE, write_grievance_content

# The fast tier (`make test-fast`) keeps a few tests of this module, on SQLite; the rest are slow.

MANAGERS = "S0MANAGERS1"
BOSS, WORKER, MENTOR = "U0BOSS0001", "U0WORKER01", "U0MENTORHR"
RESTRICTED_TEXT = "within 5 working days"  # a line of the managers' procedure
ESCALATION = "C0ESCAL002"


@pytest.fixture(scope="module")
def audience_content(tmp_path_factory):
    """A content folder with a procedure for @managers only, indexed by the real `moment index`."""
    from conftest import ContentFolder

    root = tmp_path_factory.mktemp("audience-content")
    content = ContentFolder(root / "content")
    write_grievance_content(content, audience="[managers]")
    content.write(
        "mentors.yml",
        textwrap.dedent(f"""
        mentors:
          - slack_id: {MENTOR}
            name: Morgan Hale
            topics: [grievances, hr, people ops]
            working_hours: "00:00-24:00"
            working_days: [mon, tue, wed, thu, fri, sat, sun]
            vetted_on: 2026-05-14
        """),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MOMENT_"))}
    env.update(MOMENT_HOME=str(root / "home"), MOMENT_MODEL_CACHE=str(MODEL_CACHE), HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [str(MOMENT), "index", "--content", str(content.root), "--index", str(root / "index")],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return content.root, root / "index"


@pytest.fixture
def servers(slack_api, audience_content, tmp_path):
    slack_api.clear()
    for group in list(slack_api.usergroups):
        slack_api.remove_usergroup(group)
    slack_api.set_usergroup(MANAGERS, "managers", [BOSS])
    slack_api.set_usergroup("S0SALES001", "sales", [WORKER])
    servers = MomentApps(slack_api, audience_content, tmp_path)
    yield servers
    servers.stop_all()
    slack_api.clear()


def ask_by_dm(server, slack_api, user: str, text: str = QUESTION):
    """DM `text`; the answer then posted in the DM."""
    before = len(dm_answers(slack_api, user))
    event = P.im_message(text, user=user)
    assert server.sender.event(P.event_callback(event)).status_code == 200
    channel = event["channel"]
    slack_api.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("channel") == channel and P.button(c.params.get("blocks"), answer_ui.ASK_MENTOR),
        count=before + 1,
        timeout=30,
    )
    return dm_answers(slack_api, user)[before]


def dm_answers(slack_api, user: str):
    channel = P.dm_channel(user)
    return slack_api.calls(
        "chat.postMessage",
        lambda c: c.params.get("channel") == channel and P.button(c.params.get("blocks"), answer_ui.ASK_MENTOR),
    )


def cli_env(server, slack_api) -> dict:
    """`moment ask`'s environment: the server's database, Slack through the stand-in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MOMENT_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        DATABASE_URL=server.database_url,
        MOMENT_HOME=str(server.home / "cli"),
        MOMENT_MODEL_CACHE=str(MODEL_CACHE),
        HF_HUB_OFFLINE="1",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=slack_api.api_url,
    )
    return env


def run_ask(env: dict, index_dir, *args: str) -> dict:
    done = subprocess.run(
        [str(MOMENT), "ask", QUESTION, "--json", *args],
        env={**env, "MOMENT_INDEX_DIR": str(index_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_restricted_procedure_for_members_only_answer_mentor_app_home_and_group_events(
    servers, slack_api, audience_content, module_database_url
):
    server = servers(module_database_url, env={"MOMENT_ESCALATION_CHANNEL": ESCALATION})

    # A manager gets the procedure for managers; the groups were read from Slack for this first question.
    boss = ask_by_dm(server, slack_api, BOSS)
    assert RESTRICTED_TITLE in boss.text() and ":lock: For @managers only" in boss.text()
    assert slack_api.calls("usergroups.users.list", lambda c: c.params.get("usergroup") == MANAGERS)
    # Someone else never sees it: not as the answer, not in Also see; they get the next best allowed item.
    worker = ask_by_dm(server, slack_api, WORKER)
    assert RESTRICTED_TITLE not in worker.text() and RESTRICTED_TEXT not in worker.text()
    assert PUBLIC_TITLE in worker.text()

    # The manager asks a mentor, who is not a manager: the offer shows nothing of the restricted procedure.
    click = P.block_actions(
        action_id=answer_ui.ASK_MENTOR,
        value=P.button(boss.params["blocks"], answer_ui.ASK_MENTOR)["value"],
        user=BOSS,
        channel=boss.params["channel"],
        response_url=slack_api.response_url(),
        message=P.posted_message(boss),
    )
    assert server.sender.interaction(click).status_code == 200
    offer = slack_api.wait_for(
        "chat.postMessage",
        lambda c: (
            c.params.get("channel") == P.dm_channel(MENTOR) and P.button(c.params.get("blocks"), mentor_ui.ACCEPT)
        ),
        timeout=30,
    )
    assert QUESTION in offer.text()
    assert RESTRICTED_TITLE not in offer.text() and RESTRICTED_TEXT not in offer.text()

    # Slack says the worker joined @managers and the boss left: the cache follows (read again over HTTP).
    slack_api.set_usergroup(MANAGERS, "managers", [WORKER])
    users_lists = len(slack_api.calls("usergroups.users.list"))
    event = P.subteam_members_changed(MANAGERS, added=[WORKER], removed=[BOSS])
    assert server.sender.event(P.event_callback(event)).status_code == 200
    slack_api.wait_for("usergroups.users.list", count=users_lists + 1, timeout=20)
    deadline = time.monotonic() + 20
    while True:  # the refresh is written just after the call; the next question reads it
        answer = ask_by_dm(server, slack_api, WORKER)
        if RESTRICTED_TITLE in answer.text() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert RESTRICTED_TITLE in answer.text()

    # The boss's App Home still lists their question, but not the item they may no longer see (once the
    # change reaches the web process that opens it: within MOMENT_AUDIENCE_CACHE_SECONDS).
    deadline = time.monotonic() + 20
    while True:
        published = len(slack_api.calls("views.publish", lambda c: c.params.get("user_id") == BOSS))
        server.sender.event(P.event_callback(P.app_home_opened(user=BOSS)))
        mine = lambda c: c.params.get("user_id") == BOSS  # noqa: E731
        slack_api.wait_for("views.publish", mine, count=published + 1)
        home = slack_api.calls("views.publish", mine)[published]
        if RESTRICTED_TITLE not in home.text() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert QUESTION in home.text() and RESTRICTED_TITLE not in home.text()

    # In a channel everyone reads the thread: a manager's @mention is answered from content for everyone.
    mention = P.app_mention(QUESTION, user=WORKER, channel="C0GENERAL")
    assert server.sender.event(P.event_callback(mention)).status_code == 200
    reply = slack_api.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == mention["ts"], timeout=30)
    assert RESTRICTED_TITLE not in reply.text() and PUBLIC_TITLE in reply.text()

    # `moment ask --as` answers as that person would see it, from the shared cache.
    env = cli_env(server, slack_api)
    as_worker = run_ask(env, audience_content[1], "--as", WORKER)
    assert as_worker["sources"][0]["title"] == RESTRICTED_TITLE and as_worker["as"]["groups_known"]
    as_boss = run_ask(env, audience_content[1], "--as", BOSS)
    assert RESTRICTED_TITLE not in [s["title"] for s in as_boss["sources"]]
    anyone = run_ask(env, audience_content[1])
    assert RESTRICTED_TITLE not in [s["title"] for s in anyone["sources"]]


@pytest.mark.slow
def test_when_slack_cannot_be_asked_restricted_items_are_withheld(servers, slack_api, audience_content, database_url):
    slack_api.fail_next("usergroups.list", status=503, times=1000)
    server = servers(database_url)
    boss = ask_by_dm(server, slack_api, BOSS)
    assert RESTRICTED_TITLE not in boss.text() and RESTRICTED_TEXT not in boss.text()
    assert "couldn't check yours" in boss.text()
    assert slack_api.calls("usergroups.list")  # it tried
    # The CLI says so too: the cache was never filled and Slack still cannot be asked.
    answer = run_ask(cli_env(server, slack_api), audience_content[1], "--as", BOSS)
    assert RESTRICTED_TITLE not in [s["title"] for s in answer["sources"]]
    assert not answer["as"]["groups_known"] and "couldn't check yours" in " ".join(answer["notices"])


def sees_restricted_eventually(server, slack_api, user: str, visible: bool, timeout: float = 25) -> bool:
    """Ask as `user` until the restricted procedure is (or is not) in the answer, or `timeout` passes: a
    change written by one web process reaches the other within MOMENT_AUDIENCE_CACHE_SECONDS."""
    deadline = time.monotonic() + timeout
    while True:
        shown = RESTRICTED_TITLE in ask_by_dm(server, slack_api, user).text()
        if shown == visible or time.monotonic() > deadline:
            return shown
        time.sleep(0.5)


@pytest.mark.slow
def test_an_ask_answer_from_restricted_content_is_never_shared_in_the_channel(servers, slack_api, database_url):
    server = servers(database_url)
    channel = "C0TEAMROOM"

    def ask(user: str):
        response_url = slack_api.response_url()
        server.sender.command(P.slash_command(QUESTION, user=user, channel=channel, response_url=response_url))
        answer = slack_api.wait_for(
            "chat.postEphemeral", lambda c: c.params.get("channel") == channel and c.params.get("user") == user
        )
        return answer, response_url

    def click_share(user: str, interaction_id: str, response_url: str) -> None:
        click = P.block_actions(
            action_id=answer_ui.SHARE_ANSWER,
            value=interaction_id,
            user=user,
            channel=channel,
            response_url=response_url,
            ephemeral=True,
            text="Share in channel",
        )
        assert server.sender.interaction(click).status_code == 200

    # Someone outside @managers: an answer for everyone, which they may share (the button works here).
    worker_answer, worker_url = ask(WORKER)
    assert RESTRICTED_TITLE not in worker_answer.text()
    share = P.button(worker_answer.params["blocks"], answer_ui.SHARE_ANSWER)
    click_share(WORKER, share["value"], worker_url)
    shared = slack_api.wait_for("chat.postMessage", lambda c: c.params.get("channel") == channel)
    assert PUBLIC_TITLE in shared.text()

    # A manager's answer comes from the managers' procedure: no Share button, and a share click (an old
    # message, a crafted payload) is refused through the response_url; nothing more reaches the channel.
    boss_answer, boss_url = ask(BOSS)
    assert RESTRICTED_TITLE in boss_answer.text()
    assert P.button(boss_answer.params["blocks"], answer_ui.SHARE_ANSWER) is None
    interaction_id = P.button(boss_answer.params["blocks"], answer_ui.ASK_MENTOR)["value"]
    click_share(BOSS, interaction_id, boss_url)
    refusal = slack_api.wait_for(
        "response_url", lambda c: c.params["response_url_id"] == boss_url.rsplit("/", 1)[-1], timeout=20
    )
    assert "can't post it where others would see it" in refusal.params.get("text", "")
    assert not refusal.params.get("delete_original")
    time.sleep(1)  # give a wrongly made post the time to arrive
    posts = slack_api.calls("chat.postMessage", lambda c: c.params.get("channel") == channel)
    assert len(posts) == 1 and all(RESTRICTED_TITLE not in p.text() for p in posts)


def test_group_renamed_created_and_disabled_in_slack_reach_the_answers(servers, slack_api, database_url):
    """`subteam_updated` and `subteam_created` over signed HTTP: the content is for `@managers` (a handle)."""
    server = servers(database_url)
    assert RESTRICTED_TITLE in ask_by_dm(server, slack_api, BOSS).text()  # groups read for this question

    # Renamed: @managers becomes @line-managers. The content names @managers, which no group is any more.
    slack_api.set_usergroup(MANAGERS, "line-managers", [BOSS])
    renamed = P.subteam_updated(MANAGERS, handle="line-managers", users=[BOSS])
    assert server.sender.event(P.event_callback(renamed)).status_code == 200
    assert not sees_restricted_eventually(server, slack_api, BOSS, visible=False)

    # A new group takes the handle @managers: its members see the content, read from Slack when it was made.
    new_group = "S0NEWMGRS01"
    slack_api.set_usergroup(new_group, "managers", [WORKER])
    created = {**P.subteam_updated(new_group, handle="managers", users=[WORKER]), "type": "subteam_created"}
    assert server.sender.event(P.event_callback(created)).status_code == 200
    assert sees_restricted_eventually(server, slack_api, WORKER, visible=True)
    assert slack_api.calls("usergroups.users.list", lambda c: c.params.get("usergroup") == new_group)
    assert not sees_restricted_eventually(server, slack_api, BOSS, visible=False)

    # Disabled (Slack sends subteam_updated with date_delete set): nobody is in it any more.
    slack_api.remove_usergroup(new_group)
    disabled = P.subteam_updated(new_group, handle="managers", users=[WORKER], deleted=True)
    assert server.sender.event(P.event_callback(disabled)).status_code == 200
    assert not sees_restricted_eventually(server, slack_api, WORKER, visible=False)


@pytest.mark.slow
def test_the_workers_scheduled_refresh_reads_the_groups_again(
    servers, slack_api, audience_content, database_url, tmp_path
):
    server = servers(database_url)
    assert RESTRICTED_TITLE in ask_by_dm(server, slack_api, BOSS).text()
    # Slack changes @managers and sends no event (missed, or the app was not subscribed): the cache is fresh,
    # so the web processes do not read it again, and the answers stay as they were.
    slack_api.set_usergroup(MANAGERS, "managers", [WORKER])
    time.sleep(6)  # past MOMENT_AUDIENCE_CACHE_SECONDS: what follows is the database cache's content
    assert RESTRICTED_TITLE not in ask_by_dm(server, slack_api, WORKER).text()

    settings = load_settings(
        home=tmp_path / "worker-home",
        content_dir=audience_content[0],
        index_dir_override=audience_content[1],
        database_url_override=database_url,
        model_cache_override=MODEL_CACHE,
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_api_url=slack_api.api_url,
        audience_refresh_minutes=3,
    )
    worker.setup(settings)
    sched = worker.scheduler(settings, blocking=False)
    sched.start(paused=True)
    try:
        job = sched.get_job("usergroups")
        assert job.trigger.interval.total_seconds() == 180  # every MOMENT_AUDIENCE_REFRESH_MINUTES
        lists = len(slack_api.calls("usergroups.list"))
        assert job.func() is True  # the scheduled job, run now
    finally:
        sched.shutdown(wait=False)
        worker._context = None
    assert len(slack_api.calls("usergroups.list")) == lists + 1
    assert sees_restricted_eventually(server, slack_api, WORKER, visible=True)
    assert RESTRICTED_TITLE not in ask_by_dm(server, slack_api, BOSS).text()
