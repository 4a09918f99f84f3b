"""Moment under faults (issue 30, items 1-12): the real Slack app (in this process, or real `moment serve`
processes) driven by signed HTTP, answering into the Slack stand-in, with the database down, hung or
read-only (a dead port, a TCP proxy that is cut, a server that never answers, a read-only file), and Slack
answering 5xx, 429, ok:false or dropping the connection. Nothing may be lost or doubled.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest
from sqlalchemy import func, select

from assistant.db.database import Database
from assistant.db.models import Interaction, Vote
from assistant.slack import blocks as ui
from slackstub import payloads as P
from slackstub.network import HungServer, TcpProxy
from tests.slack_fixtures import MOMENT, free_port
from tests.test_slack_app import assert_stays as stays
from tests.test_slack_app import db_session

pytestmark = pytest.mark.slow

VPN_QUESTION = "my vpn token keeps failing how do i reset it"
MILEAGE_QUESTION = "whats the mileage rate if i use my own car"
QUIET = 2.5  # seconds to watch for a reply that must not come
PG = os.environ.get("TEST_DATABASE_URL")
needs_pg = pytest.mark.skipif(not PG, reason="needs TEST_DATABASE_URL (PostgreSQL)")


def dead_database_url() -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test?connect_timeout=3"


def count(url: str, model, *where) -> int:
    with db_session(url) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def to(channel: str, thread_ts: str | None = "any"):
    def match(call) -> bool:
        return call.params.get("channel") == channel and (
            thread_ts == "any" or call.params.get("thread_ts") == thread_ts
        )

    return match


def section_texts(blocks: list[dict]) -> str:
    return json.dumps(blocks)


def answered_dm(server, slack_api, user: str, question: str = VPN_QUESTION):
    """Ask in a DM; (the answer's post, its interaction id)."""
    server.sender.event(P.event_callback(P.im_message(question, user=user)))
    answer = slack_api.wait_for("chat.postMessage", lambda c: c.ok and to(P.dm_channel(user))(c))
    return answer, int(P.button(answer.params["blocks"], ui.VOTE_HELPFUL)["value"])


# --- doubled: one message, several deliveries (items 7, 8) ---------------------------------------------


def test_one_message_under_three_event_ids_is_answered_and_recorded_once(moment_app, database_url, slack_api):
    server = moment_app(database_url)
    for kind in ("dm", "mention"):
        user = P.uid()
        channel = P.dm_channel(user) if kind == "dm" else P.uid("C")
        if kind == "dm":
            event = P.im_message(VPN_QUESTION, user=user)
        else:
            event = P.app_mention(VPN_QUESTION, user=user, channel=channel)
        for _ in range(3):  # the same message (channel, ts), three event ids
            assert server.sender.event(P.event_callback(event)).status_code == 200
        slack_api.wait_for("chat.postMessage", to(channel))
        stays(slack_api, "chat.postMessage", to(channel), 1)
        assert count(database_url, Interaction, Interaction.user_id == user) == 1


def test_a_retry_during_a_database_outage_is_answered_once(moment_app, slack_api):
    server = moment_app(dead_database_url(), healthy=False)
    user = P.uid()
    envelope = P.event_callback(P.im_message(MILEAGE_QUESTION, user=user))
    assert server.sender.event(envelope).status_code == 200
    slack_api.wait_for("chat.postMessage", to(P.dm_channel(user)))
    assert server.sender.event(envelope, retry_num=1).status_code == 200
    again = dict(envelope, event_id=P.new_event_id())  # and once more under another event id
    assert server.sender.event(again, retry_num=2).status_code == 200
    stays(slack_api, "chat.postMessage", to(P.dm_channel(user)), 1)
    spool = (server.home / "spool" / "interactions.jsonl").read_text().splitlines()
    assert len([row for row in spool if json.loads(row)["user_id"] == user]) == 1  # recorded once, for later


@needs_pg
def test_a_retry_after_the_database_is_back_is_still_a_duplicate(moment_app, database_url, slack_api):
    """Claimed on the host while the database was cut; the retry comes when it is back."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the proxy stands in front of PostgreSQL")
    with TcpProxy("127.0.0.1", 5432) as proxy:
        server = moment_app(proxy.url_for(database_url))
        user = P.uid()
        envelope = P.event_callback(P.im_message(MILEAGE_QUESTION, user=user))
        proxy.cut()
        server.sender.event(envelope)
        slack_api.wait_for("chat.postMessage", to(P.dm_channel(user)))
        proxy.restore()
        server.sender.event(envelope, retry_num=1)
        server.sender.event(dict(envelope, event_id=P.new_event_id()), retry_num=2)
        stays(slack_api, "chat.postMessage", to(P.dm_channel(user)), 1)


# --- the spool names its database (item 5) ---------------------------------------------------------------


def test_questions_spooled_for_one_database_are_never_written_into_another(moment_content, tmp_path):
    """`moment ask` with PostgreSQL down spools the question; the next `moment ask` with a SQLite database
    in the same MOMENT_HOME writes only its own question there."""
    home = tmp_path / "home"
    sqlite_url = f"sqlite:///{tmp_path / 'other.db'}"

    def ask(question: str, url: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MOMENT_", "SLACK_"))}
        env.update(
            DATABASE_URL=url,
            MOMENT_HOME=str(home),
            MOMENT_INDEX_DIR=str(moment_content[1]),
            MOMENT_CONTENT_DIR=str(moment_content[0]),
            HF_HUB_OFFLINE="1",
        )
        if os.environ.get("MOMENT_MODEL_CACHE"):
            env["MOMENT_MODEL_CACHE"] = os.environ["MOMENT_MODEL_CACHE"]
        return subprocess.run([str(MOMENT), "ask", question], env=env, capture_output=True, text=True, timeout=180)

    first = ask(VPN_QUESTION, dead_database_url())
    assert first.returncode == 0, first.stderr
    assert VPN_QUESTION in (home / "spool" / "interactions.jsonl").read_text()
    second = ask(MILEAGE_QUESTION, sqlite_url)
    assert second.returncode == 0, second.stderr
    with db_session(sqlite_url) as session:
        assert [r.question for r in session.scalars(select(Interaction)).all()] == [MILEAGE_QUESTION]
    assert VPN_QUESTION in (home / "spool" / "interactions.jsonl").read_text()  # still waiting for its own


# --- votes (item 10) ----------------------------------------------------------------------------------


def test_concurrent_vote_clicks_keep_one_vote_without_tracebacks(moment_app, database_url, slack_api):
    server = moment_app(database_url, env={"MOMENT_WEB_THREADS": "8"})
    user = P.uid()
    answer, interaction_id = answered_dm(server, slack_api, user)
    message = P.posted_message(answer)
    for _ in range(6):
        voter = P.uid()
        payloads = [
            P.block_actions(
                action_id=ui.VOTE_HELPFUL,
                value=str(interaction_id),
                user=voter,
                channel=P.dm_channel(user),
                response_url=slack_api.response_url(),
                message=message,
            )
            for _ in range(6)
        ]
        barrier = threading.Barrier(len(payloads))

        def click(payload, barrier=barrier):
            barrier.wait(timeout=10)
            assert server.sender.interaction(payload).status_code == 200

        threads = [threading.Thread(target=click, args=(p,)) for p in payloads]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        slack_api.wait_for("chat.postEphemeral", lambda c, v=voter: c.params.get("user") == v, count=len(payloads))
        assert count(database_url, Vote, Vote.interaction_id == interaction_id, Vote.user_id == voter) == 1
    log = server.log()
    assert "IntegrityError" not in log and "UniqueViolation" not in log and "Traceback" not in log


# --- Ask a mentor while the database is down (item 3) ------------------------------------------------------


def test_ask_a_mentor_while_the_database_is_down_tells_the_person(moment_app, slack_api):
    server = moment_app(dead_database_url(), healthy=False)
    user, channel = P.uid(), P.uid("C")
    click = P.block_actions(
        action_id=ui.ASK_MENTOR, value="7", user=user, channel=channel, response_url=slack_api.response_url()
    )
    assert server.sender.interaction(click).status_code == 200
    note = slack_api.wait_for("chat.postEphemeral", lambda c: c.params.get("user") == user, timeout=20)
    assert "can't reach my database" in note.params["text"] and note.params["channel"] == channel
    assert "Traceback" not in server.log()


# --- at most once, also when the connection drops (item 9) ------------------------------------------------


def answers_in(slack_api, channel: str) -> list[dict]:
    """The messages the channel shows (what people see, whatever the calls were answered)."""
    return [m for m in slack_api.channel_messages(channel) if m.get("bot_id")]


def test_a_connection_dropped_after_slack_posted_shows_the_answer_once(moment_app, database_url, slack_api):
    server = moment_app(database_url)
    user = P.uid()
    channel = P.dm_channel(user)
    slack_api.fail_next("chat.postMessage", drop=True, channel=channel)
    server.sender.event(P.event_callback(P.im_message(VPN_QUESTION, user=user)))
    slack_api.wait_for("conversations.history", lambda c: c.params.get("channel") == channel)
    stays(slack_api, "chat.postMessage", to(channel), 1)  # the dropped one; never posted again
    [shown] = answers_in(slack_api, channel)
    assert "Reset a VPN hardware token" in json.dumps(shown["blocks"])
    assert not slack_api.calls("chat.postEphemeral", lambda c: c.params.get("user") == user)
    assert count(database_url, Interaction, Interaction.user_id == user) == 1


def test_a_connection_dropped_before_slack_posted_is_posted_once(moment_app, slack_api, tmp_path):
    """The same fault, but Slack had not posted (the look-up finds nothing): posted again, once."""
    server = moment_app(f"sqlite:///{tmp_path / 'm.db'}")
    user = P.uid()
    channel = P.dm_channel(user)
    slack_api.fail_next("chat.postMessage", status=503, channel=channel)  # not posted: 5xx before the work
    slack_api.fail_next("conversations.history", drop=True, channel=channel)  # the look-up's answer lost too
    server.sender.event(P.event_callback(P.im_message(MILEAGE_QUESTION, user=user)))
    slack_api.wait_for("chat.postMessage", lambda c: c.ok and to(channel)(c))
    stays(slack_api, "chat.postMessage", lambda c: c.ok and to(channel)(c), 1)
    assert len(answers_in(slack_api, channel)) == 1


def test_a_slow_answer_after_a_successful_post_is_no_failure(moment_app, database_url, slack_api):
    """Slack posts, then answers after the client's timeout (15 s): the asker sees the answer and no
    'I couldn't post my reply' beside it."""
    server = moment_app(database_url)
    user = P.uid()
    channel = P.dm_channel(user)
    slack_api.fail_next("chat.postMessage", delay=17, channel=channel)
    server.sender.event(P.event_callback(P.im_message(VPN_QUESTION, user=user)))
    slack_api.wait_for("conversations.history", lambda c: c.params.get("channel") == channel, timeout=40)
    time.sleep(QUIET)
    assert len(answers_in(slack_api, channel)) == 1
    notes = [m for m in answers_in(slack_api, channel) if "couldn't post" in m.get("text", "")]
    assert not notes and not slack_api.calls("chat.postEphemeral", lambda c: c.params.get("user") == user)
    assert "could not post" not in server.log()


# --- health (item 11) ------------------------------------------------------------------------------


def test_a_hung_database_answers_503_within_2_s_and_never_holds_acknowledgements(moment_app, slack_api):
    """A database that accepts connections and never answers: /healthz says 503 within 2 s, again and again,
    and Slack's requests are acknowledged within 3 s meanwhile."""
    with HungServer() as hung:
        server = moment_app(hung.postgresql_url() + "?connect_timeout=10", healthy=False)
        probes: list[tuple[float, int]] = []
        acks: list[float] = []

        def probe():
            for _ in range(4):
                started = time.monotonic()
                status = server.healthz().status_code
                probes.append((time.monotonic() - started, status))

        prober = [threading.Thread(target=probe) for _ in range(3)]
        for t in prober:
            t.start()
        time.sleep(0.2)
        for _ in range(6):
            started = time.monotonic()
            response = server.sender.event(P.event_callback(P.im_message(VPN_QUESTION, user=P.uid())))
            assert response.status_code == 200
            acks.append(time.monotonic() - started)
        for t in prober:
            t.join(timeout=60)
    assert len(probes) == 12
    assert all(status == 503 for _, status in probes), probes
    assert max(seconds for seconds, _ in probes) < 2.0, probes
    assert max(acks) < 3.0, acks


def test_a_read_only_sqlite_database_is_unhealthy_with_the_reason(moment_app, tmp_path):
    path = tmp_path / "moment.db"
    writable = moment_app(f"sqlite:///{path}")  # creates and migrates it
    assert writable.healthz().status_code == 200
    writable.stop()
    server = moment_app(f"sqlite:///file:{path}?mode=ro&uri=true", healthy=False)
    response = server.healthz()
    assert response.status_code == 503, response.text
    assert "readonly" in response.json()["database"] and response.json()["index"] == "ok"


@needs_pg
def test_a_read_only_postgresql_database_is_unhealthy_with_the_reason(moment_app, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    writable = moment_app(database_url)
    writable.stop()
    read_only = database_url.replace("options=", "options=-cdefault_transaction_read_only%3Don%20")
    server = moment_app(read_only, healthy=False)
    response = server.healthz()
    assert response.status_code == 503, response.text
    assert "read-only" in response.json()["database"]


# --- mentor hand-offs (items 1, 2; kill -9 at each step) -----------------------------------------------------


def _mentor_setup(moment_content, tmp_path, database_url, slack_api):
    """(content_dir, env of a server with four mentors, worker settings)."""
    import shutil
    import textwrap

    from pydantic import SecretStr

    from assistant.settings import load_settings
    from tests.slack_fixtures import BOT_TOKEN, MODEL_CACHE
    from tests.test_slack_mentors import ASKER, ESCALATION, IT_DESK, MENTORS, VPN_A, VPN_B

    content_dir, index_dir = tmp_path / "content", tmp_path / "index"
    shutil.copytree(moment_content[0], content_dir)
    shutil.copytree(moment_content[1], index_dir)
    (content_dir / "mentors.yml").write_text(textwrap.dedent(MENTORS), encoding="utf-8")
    slack_api.users.update({VPN_A: "Priya Natarajan", VPN_B: "Raj Mehta", IT_DESK: "Lee Chen", ASKER: "Ash Asker"})
    # The mentors' DMs start empty (the stand-in is shared by the module's tests).
    slack_api.forget_messages(*(P.dm_channel(user) for user in (VPN_A, VPN_B, IT_DESK, ASKER)))
    env = {
        "MOMENT_CONTENT_DIR": str(content_dir),
        "MOMENT_INDEX_DIR": str(index_dir),
        "MOMENT_ESCALATION_CHANNEL": ESCALATION,
        "MOMENT_MENTOR_MAX_ATTEMPTS": "3",
    }
    settings = load_settings(
        home=tmp_path / "worker-home",
        content_dir=content_dir,
        index_dir_override=index_dir,
        database_url_override=database_url,
        model_cache_override=MODEL_CACHE,
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_api_url=slack_api.api_url,
        escalation_channel=ESCALATION,
    )
    return env, settings


MENTOR_QUESTION = "vpn token shows error 42 after the firmware update what now"


def _ask_mentor(server, slack_api, asker: str, before_click=None):
    """Ask in a DM, then click *Ask a mentor* on the answer (`before_click()` first: a fault to inject)."""
    event = P.im_message(MENTOR_QUESTION, user=asker)
    server.sender.event(P.event_callback(event))
    answer = slack_api.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("channel") == event["channel"] and P.button(c.params.get("blocks"), ui.ASK_MENTOR),
        timeout=60,
    )
    if before_click is not None:
        before_click()
    element = P.button(answer.params["blocks"], ui.ASK_MENTOR)
    click = P.block_actions(
        action_id=ui.ASK_MENTOR,
        value=element["value"],
        user=asker,
        channel=event["channel"],
        response_url=slack_api.response_url(),
        message=P.posted_message(answer),
    )
    assert server.sender.interaction(click).status_code == 200
    return answer


def _offers(slack_api, mentors):
    from assistant.slack import mentor_blocks as mui

    channels = {P.dm_channel(m): m for m in mentors}
    return [
        (channels[m["channel"]], m)
        for channel in channels
        for m in slack_api.channel_messages(channel)
        if m.get("bot_id") and P.button(m.get("blocks"), mui.ACCEPT)
        for m in [dict(m, channel=channel)]
    ]


def _told_asker(slack_api, asker: str, text: str) -> list[dict]:
    return [m for m in slack_api.channel_messages(P.dm_channel(asker)) if text in json.dumps(m)]


def test_an_offer_slack_refuses_goes_to_the_next_mentor_at_once(moment_app, moment_content, tmp_path, slack_api):
    from tests.test_slack_mentors import ASKER, IT_DESK, VPN_A, VPN_B

    env, _ = _mentor_setup(moment_content, tmp_path, f"sqlite:///{tmp_path / 'm.db'}", slack_api)
    server = moment_app(f"sqlite:///{tmp_path / 'm.db'}", env=env)
    slack_api.clear()
    asker = ASKER
    # The first offer is refused (ok:false).
    _ask_mentor(server, slack_api, asker, lambda: slack_api.fail_next("chat.postMessage", error="cannot_dm_bot"))
    refused = slack_api.wait_for("chat.postMessage", lambda c: not c.ok, timeout=30)
    first = next(m for m in (VPN_A, VPN_B, IT_DESK) if refused.params["channel"] == P.dm_channel(m))
    slack_api.wait_for("chat.postMessage", lambda c: c.ok and "I've asked" in c.text(), timeout=30)
    [(second, _)] = _offers(slack_api, (VPN_A, VPN_B, IT_DESK))
    assert second != first
    time.sleep(1)
    told = _told_asker(slack_api, asker, "I've asked")
    assert len(told) == 1 and f"<@{second}>" in json.dumps(told[0]) and f"<@{first}>" not in json.dumps(told)


def _run_worker(settings, job: str, *args):
    """One run of a `moment worker` job."""
    from assistant import worker

    try:
        worker.setup(settings)
        return getattr(worker, job)(*args)
    finally:
        worker._context = None


def _gunicorn_workers(server) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(server.process.pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _kill_workers(server) -> None:
    import signal

    for pid in _gunicorn_workers(server):
        os.kill(pid, signal.SIGKILL)


@needs_pg
def test_kill_9_between_ask_a_mentor_and_the_first_offer_is_resumed_by_the_worker(
    moment_server, moment_content, tmp_path, database_url, slack_api
):
    """The process dies after the request is recorded and before any offer (held there by a lock on the
    mentors table): the worker's sweep offers it, once, and tells the asker."""
    if not database_url.startswith("postgresql"):
        pytest.skip("holds a PostgreSQL table lock")
    import datetime as dt

    from sqlalchemy import text

    from assistant.db.models import MentorOffer, MentorRequest
    from tests.test_slack_mentors import IT_DESK, VPN_A, VPN_B

    env, settings = _mentor_setup(moment_content, tmp_path, database_url, slack_api)
    server = moment_server(database_url, env=env, workers=1)
    slack_api.clear()
    asker = P.uid()
    holder = Database(database_url)
    with holder.engine.connect() as lock:
        lock.execute(text("LOCK TABLE mentors IN EXCLUSIVE MODE"))
        _ask_mentor(server, slack_api, asker)
        deadline = time.monotonic() + 30
        while not count(database_url, MentorRequest, MentorRequest.asker_id == asker) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # the offer's transaction is waiting for the lock
        _kill_workers(server)
        lock.rollback()
    holder.dispose()
    time.sleep(1.0)
    with db_session(database_url) as session:
        [request] = session.scalars(select(MentorRequest).where(MentorRequest.asker_id == asker)).all()
        assert request.status == "searching" and not session.scalars(select(MentorOffer)).all()
    done = _run_worker(settings, "mentor_deadlines", dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    assert done["resumed"] == 1
    assert len(_offers(slack_api, (VPN_A, VPN_B, IT_DESK))) == 1
    assert len(_told_asker(slack_api, asker, "I've asked")) == 1


@needs_pg
def test_kill_9_while_the_offer_is_being_posted_is_noted_once_by_the_worker(
    moment_server, moment_content, tmp_path, database_url, slack_api
):
    """Slack posted the offer, the process died before noting it: the worker's sweep finds the offer by its
    delivery key (never posts it twice) and tells the asker."""
    if not database_url.startswith("postgresql"):
        pytest.skip("one database backend is enough for a process kill")
    import datetime as dt

    from assistant.db.models import MentorOffer
    from tests.test_slack_mentors import IT_DESK, VPN_A, VPN_B

    env, settings = _mentor_setup(moment_content, tmp_path, database_url, slack_api)
    server = moment_server(database_url, env=env, workers=1)
    slack_api.clear()
    asker = P.uid()
    # The offer is posted; its answer never arrives.
    _ask_mentor(server, slack_api, asker, lambda: slack_api.fail_next("chat.postMessage", delay=30))
    deadline = time.monotonic() + 30
    while not _offers(slack_api, (VPN_A, VPN_B, IT_DESK)) and time.monotonic() < deadline:
        time.sleep(0.1)
    _kill_workers(server)
    with db_session(database_url) as session:
        [offer] = session.scalars(select(MentorOffer)).all()
        assert offer.outcome == "pending" and offer.message_ts is None
    done = _run_worker(settings, "mentor_deadlines", dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    assert done["resumed"] == 1
    assert len(_offers(slack_api, (VPN_A, VPN_B, IT_DESK))) == 1
    assert len(_told_asker(slack_api, asker, "I've asked")) == 1
    with db_session(database_url) as session:
        assert session.scalars(select(MentorOffer)).one().message_ts is not None


# --- help channels: in order (item 12, issue 31 part 5), and through an outage (item 4) -----------------------

HELP_QUESTIONS = (VPN_QUESTION, "whats the mileage rate if i use my own car?")


def _help_channel(database_url: str, team: str = "default") -> str:
    """A help channel that answers everything it can (a bar of 0.1)."""
    from assistant.helpchannels import ChannelScope, HelpChannels

    channel = P.uid("C")
    database = Database(database_url)
    try:
        HelpChannels(database, 0.85, team).configure(channel, "it-help", ChannelScope(min_confidence=0.1), "U0ADMIN001")
    finally:
        database.dispose()
    return channel


def test_two_questions_50_ms_apart_are_answered_in_order_with_dms_in_flight(moment_server, database_url, slack_api):
    """20 times: DMs keep the listener threads of two `moment serve` workers busy; two questions are posted
    in a help channel 50 ms apart; the earlier is always answered first."""
    server = moment_server(database_url, env={"MOMENT_CHANNEL_POST_INTERVAL": "0.1", "MOMENT_WEB_THREADS": "4"})
    swapped, trials = [], 20
    for trial in range(trials):
        channel = _help_channel(database_url)
        for _ in range(8):
            envelope = P.event_callback(P.im_message(VPN_QUESTION, user=P.uid()))
            threading.Thread(target=server.sender.event, args=(envelope,), daemon=True).start()
        time.sleep(0.05)
        first = P.channel_message(HELP_QUESTIONS[trial % 2], user=P.uid(), channel=channel)
        second = P.channel_message(HELP_QUESTIONS[(trial + 1) % 2], user=P.uid(), channel=channel)
        server.sender.event(P.event_callback(first))
        time.sleep(0.05)
        server.sender.event(P.event_callback(second))
        slack_api.wait_for("chat.postMessage", lambda c, ch=channel: c.ok and to(ch)(c), count=2, timeout=60)
        order = [c.params["thread_ts"] for c in slack_api.calls("chat.postMessage", lambda c, ch=channel: to(ch)(c))]
        if order != [first["ts"], second["ts"]]:
            swapped.append(trial)
    assert swapped == [], f"answered out of order in trials {swapped} of {trials}"


@needs_pg
def test_help_channel_questions_during_an_outage_are_answered_after_it(moment_app, database_url, slack_api):
    if not database_url.startswith("postgresql"):
        pytest.skip("the proxy stands in front of PostgreSQL")
    with TcpProxy("127.0.0.1", 5432) as proxy:
        server = moment_app(proxy.url_for(database_url))
        channel = _help_channel(database_url)
        proxy.cut()
        started = time.monotonic()
        events = [P.channel_message(q, user=P.uid(), channel=channel) for q in HELP_QUESTIONS]
        for event in events:
            assert server.sender.event(P.event_callback(event)).status_code == 200
        assert time.monotonic() - started < 2 * 3.0  # acknowledged in time
        time.sleep(3)
        assert not slack_api.calls("chat.postMessage", to(channel))
        proxy.restore()
        slack_api.wait_for("chat.postMessage", lambda c: c.ok and to(channel)(c), count=2, timeout=60)
        stays(slack_api, "chat.postMessage", to(channel), 2)
        order = [c.params["thread_ts"] for c in slack_api.calls("chat.postMessage", to(channel))]
        assert order == [e["ts"] for e in events]


# --- a question whose process dies right after the acknowledgement (item 6) ----------------------------------


def test_a_question_whose_process_dies_after_its_ack_is_recorded_and_answered_by_the_worker(
    moment_server, moment_content, tmp_path, database_url, slack_api
):
    import datetime as dt

    env, settings = _mentor_setup(moment_content, tmp_path, database_url, slack_api)
    server = moment_server(database_url, env=env, workers=1)
    slack_api.clear()
    user = P.uid()
    # The listener is held before it answers (reading the thread's earlier question) when the process dies: on
    # a quiet machine an answer is composed and recorded within the 0.1 s below, and a record completed before
    # its post is a gap of its own (an answer recorded but never posted is not yet taken up by the worker).
    slack_api.fail_next("conversations.replies", delay=20)
    message = P.im_message(VPN_QUESTION, user=user, thread_ts=P.new_ts())
    assert server.sender.event(P.event_callback(message)).status_code == 200
    time.sleep(0.1)
    _kill_workers(server)
    with db_session(database_url) as session:
        [row] = session.scalars(select(Interaction).where(Interaction.user_id == user)).all()
        assert row.outcome in ("received", "answering") and row.question == VPN_QUESTION
    assert not answers_in(slack_api, P.dm_channel(user))
    assert _run_worker(settings, "questions_left", dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4)) == 1
    assert _run_worker(settings, "questions_left", dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)) == 0
    [shown] = answers_in(slack_api, P.dm_channel(user))
    assert "Reset a VPN hardware token" in json.dumps(shown["blocks"])
    with db_session(database_url) as session:
        [row] = session.scalars(select(Interaction).where(Interaction.user_id == user)).all()
        assert row.outcome not in ("received", "answering", "resuming") and row.answered and row.sources
