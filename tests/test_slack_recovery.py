"""Nothing lost when a `moment serve` process is killed (-9) at each step of a question (received ->
answering -> recorded -> posted), or of a vote or an *Ask a mentor* click, also while the database is away:
the next process on the host and the worker finish the work, and nothing is shown or recorded twice.
(issue 30; the step "received, before its listener answers" with the database up is in test_slack_faults.py)
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from sqlalchemy import select

from assistant.db.models import Interaction
from slackstub import payloads as P
from slackstub.network import TcpProxy
from tests.test_slack_app import db_session
from tests.test_slack_faults import (
    VPN_QUESTION,
    _kill_workers,
    _mentor_setup,
    _run_worker,
    answers_in,
    count,
    needs_pg,
)

pytestmark = pytest.mark.slow

LATER = dt.timedelta(minutes=4)  # the worker's run, as long after the question as it takes it up


def _wait(condition, timeout: float = 90.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _record(database_url: str, user: str) -> Interaction:
    with db_session(database_url) as session:
        [row] = session.scalars(select(Interaction).where(Interaction.user_id == user)).all()
        session.expunge(row)
        return row


def _answered(database_url: str, user: str) -> bool:
    with db_session(database_url) as session:
        rows = session.scalars(select(Interaction).where(Interaction.user_id == user)).all()
        return bool(rows) and rows[0].answered and rows[0].outcome not in ("received", "answering", "resuming")


def _worker_answers(settings, user: str) -> list[dict]:
    """Run the worker's questions-left job twice, as long after as it takes the question up: how many each
    run answered or posted."""
    now = dt.datetime.now(dt.UTC)
    first = _run_worker(settings, "questions_left", now + LATER)
    second = _run_worker(settings, "questions_left", now + 2 * LATER)
    return [first, second]


def test_kill_9_between_the_answer_record_and_its_post_is_posted_by_the_worker_once(
    moment_server, moment_content, tmp_path, database_url, slack_api
):
    """The answer is recorded; the process dies before posting it (held on the source owner's name, looked
    up between the two): the worker posts the recorded answer, once, and notes it posted."""
    env, settings = _mentor_setup(moment_content, tmp_path, database_url, slack_api)
    server = moment_server(database_url, env=env, workers=1)
    slack_api.clear()
    user = P.uid()
    slack_api.fail_next("users.info", delay=30)
    assert server.sender.event(P.event_callback(P.im_message(VPN_QUESTION, user=user))).status_code == 200
    _wait(lambda: _answered(database_url, user), what="the answer's record")
    _kill_workers(server)
    assert not answers_in(slack_api, P.dm_channel(user))
    assert _worker_answers(settings, user) == [1, 0]
    [shown] = answers_in(slack_api, P.dm_channel(user))
    assert "Reset a VPN hardware token" in json.dumps(shown["blocks"])
    row = _record(database_url, user)
    assert row.unposted_since is None and row.answered
    assert count(database_url, Interaction, Interaction.user_id == user) == 1


def test_kill_9_after_slack_posted_the_answer_is_found_not_posted_again(
    moment_server, moment_content, tmp_path, database_url, slack_api
):
    """Slack posted the answer; its reply never reached the process, which died: the worker finds the post by
    its delivery key and notes it, posting nothing."""
    env, settings = _mentor_setup(moment_content, tmp_path, database_url, slack_api)
    server = moment_server(database_url, env=env, workers=1)
    slack_api.clear()
    user = P.uid()
    slack_api.fail_next("chat.postMessage", delay=30, channel=P.dm_channel(user))
    assert server.sender.event(P.event_callback(P.im_message(VPN_QUESTION, user=user))).status_code == 200
    _wait(lambda: answers_in(slack_api, P.dm_channel(user)), what="the answer's post")
    _kill_workers(server)
    assert _worker_answers(settings, user) == [1, 0]
    assert len(answers_in(slack_api, P.dm_channel(user))) == 1
    assert _record(database_url, user).unposted_since is None


@needs_pg
def test_a_question_acknowledged_while_the_database_is_away_survives_its_process(
    moment_server, moment_content, tmp_path, database_url, slack_api
):
    """The database is cut when a DM arrives: it is acknowledged in time, spooled on the host; the process dies
    before answering it. The database comes back; the next process on the host writes the question into the
    database it was meant for, and the worker answers it, once."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the proxy stands in front of PostgreSQL")
    with TcpProxy("127.0.0.1", 5432) as proxy:
        env, settings = _mentor_setup(moment_content, tmp_path, database_url, slack_api)
        server = moment_server(proxy.url_for(database_url), env=env, workers=1)
        slack_api.clear()
        user = P.uid()
        slack_api.fail_next("conversations.replies", delay=30)  # the listener is held before it answers
        message = P.im_message(VPN_QUESTION, user=user, thread_ts=P.new_ts())
        proxy.cut()
        started = time.monotonic()
        assert server.sender.event(P.event_callback(message)).status_code == 200
        assert time.monotonic() - started < 3.0
        time.sleep(0.5)
        _kill_workers(server)
        proxy.restore()
        _wait(lambda: count(database_url, Interaction, Interaction.user_id == user), what="the spooled question")
        row = _record(database_url, user)
        assert row.outcome == "received" and row.question == VPN_QUESTION and row.thread_ts == message["thread_ts"]
        assert _worker_answers(settings, user) == [1, 0]
    [shown] = answers_in(slack_api, P.dm_channel(user))
    assert "Reset a VPN hardware token" in json.dumps(shown["blocks"])
    assert _answered(database_url, user)
    assert count(database_url, Interaction, Interaction.user_id == user) == 1


@needs_pg
def test_a_question_answered_during_the_outage_is_recorded_once_and_not_answered_again(
    moment_app, database_url, slack_api
):
    """The database is cut; a DM is acknowledged (its record spooled on arrival) and answered (its answer's
    record spooled). When the database is back both are written: one record, answered, and the worker has
    nothing to answer or post."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the proxy stands in front of PostgreSQL")
    with TcpProxy("127.0.0.1", 5432) as proxy:
        server = moment_app(proxy.url_for(database_url))
        user = P.uid()
        proxy.cut()
        assert server.sender.event(P.event_callback(P.im_message(VPN_QUESTION, user=user))).status_code == 200
        slack_api.wait_for("chat.postMessage", lambda c: c.params.get("channel") == P.dm_channel(user))
        proxy.restore()
        # The next answer recorded writes the spooled answers first (and this host's questions spooled on arrival).
        other = P.uid()
        server.sender.event(P.event_callback(P.im_message(VPN_QUESTION, user=other)))
        _wait(lambda: _answered(database_url, user), what="the spooled answer's record")
        # The worker finds the answer posted (the note that it was could not be made during the outage).
        _run_worker(server.settings, "questions_left", dt.datetime.now(dt.UTC) + 2 * LATER)
        assert _run_worker(server.settings, "questions_left", dt.datetime.now(dt.UTC) + 3 * LATER) == 0
    assert count(database_url, Interaction, Interaction.user_id == user) == 1
    assert _answered(database_url, user) and _record(database_url, user).unposted_since is None
    assert len(answers_in(slack_api, P.dm_channel(user))) == 1


# --- votes (and their process killed): recorded or spooled before the acknowledgement ------------------------


@needs_pg
def test_a_vote_acknowledged_while_the_database_is_held_survives_its_process(
    moment_server, moment_content, tmp_path, database_url, slack_api
):
    """Helpful is clicked while the votes table is held (a slow database): the click is acknowledged within
    3 s, the vote spooled on the host; the process dies. The next process on the host writes the vote."""
    if not database_url.startswith("postgresql"):
        pytest.skip("holds a PostgreSQL table lock")
    from sqlalchemy import text

    from assistant.db.database import Database
    from assistant.db.models import Vote
    from assistant.slack import blocks as ui

    env, _ = _mentor_setup(moment_content, tmp_path, database_url, slack_api)
    server = moment_server(database_url, env=env, workers=1)
    user, voter = P.uid(), P.uid()
    server.sender.event(P.event_callback(P.im_message(VPN_QUESTION, user=user)))
    answer = slack_api.wait_for("chat.postMessage", lambda c: c.ok and c.params.get("channel") == P.dm_channel(user))
    interaction_id = int(P.button(answer.params["blocks"], ui.VOTE_HELPFUL)["value"])
    click = P.block_actions(
        action_id=ui.VOTE_HELPFUL,
        value=str(interaction_id),
        user=voter,
        channel=P.dm_channel(user),
        response_url=slack_api.response_url(),
        message=P.posted_message(answer),
    )
    holder = Database(database_url)
    with holder.engine.connect() as lock:
        lock.execute(text("LOCK TABLE votes IN EXCLUSIVE MODE"))
        started = time.monotonic()
        assert server.sender.interaction(click).status_code == 200
        assert time.monotonic() - started < 3.0
        _kill_workers(server)
        lock.rollback()
    holder.dispose()
    assert _wait(lambda: count(database_url, Vote, Vote.user_id == voter), what="the spooled vote") == 1
    time.sleep(1)
    assert count(database_url, Vote, Vote.user_id == voter, Vote.helpful.is_(True)) == 1


@needs_pg
def test_ask_a_mentor_acknowledged_while_the_database_is_held_is_offered_after_its_process_died(
    moment_server, moment_content, tmp_path, database_url, slack_api
):
    """*Ask a mentor* is clicked while the requests table is held: the click is acknowledged within 3 s and
    kept on the host; the process dies. The next process on the host opens the request, and the worker's
    sweep offers it once and tells the asker."""
    if not database_url.startswith("postgresql"):
        pytest.skip("holds a PostgreSQL table lock")
    from sqlalchemy import text

    from assistant.db.database import Database
    from assistant.db.models import MentorRequest
    from tests.test_slack_faults import _ask_mentor, _offers, _told_asker
    from tests.test_slack_mentors import IT_DESK, VPN_A, VPN_B

    env, settings = _mentor_setup(moment_content, tmp_path, database_url, slack_api)
    server = moment_server(database_url, env=env, workers=1)
    slack_api.clear()
    asker = P.uid()
    holder = Database(database_url)
    with holder.engine.connect() as lock:

        def hold() -> None:
            lock.execute(text("LOCK TABLE mentor_requests IN EXCLUSIVE MODE"))

        started = []
        _ask_mentor(server, slack_api, asker, lambda: (hold(), started.append(time.monotonic())))
        assert time.monotonic() - started[0] < 3.0
        slack_api.wait_for(
            "chat.postEphemeral", lambda c: c.params.get("user") == asker and "find you a mentor" in c.text()
        )
        _kill_workers(server)
        lock.rollback()
    holder.dispose()
    _wait(lambda: count(database_url, MentorRequest, MentorRequest.asker_id == asker), what="the kept request")
    done = _run_worker(settings, "mentor_deadlines", dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    assert done["resumed"] == 1
    assert len(_offers(slack_api, (VPN_A, VPN_B, IT_DESK))) == 1
    assert len(_told_asker(slack_api, asker, "I've asked")) == 1
    assert count(database_url, MentorRequest, MentorRequest.asker_id == asker) == 1
