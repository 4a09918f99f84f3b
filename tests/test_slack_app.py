"""The Slack app end to end: the real WSGI app of `moment serve` (in this process) with the real index, model
and database, driven by signed HTTP requests shaped as Slack sends them, answering into a Web API stand-in.
Two servers sharing a database, and a server started without one, are real `moment serve` processes.

Only Slack is replaced (slackstub/). Assertions are on what the app really sent to the Web API.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from assistant.db.database import Database
from assistant.db.models import Interaction, ProcessedEvent, Vote
from assistant.slack import blocks as ui
from slackstub import payloads as P
from tests.slack_fixtures import OWNER, free_port

# The fast tier (`make test-fast`) keeps a few tests of this module, on SQLite; the rest are slow.

VPN_QUESTION = "my vpn token keeps failing how do i reset it"
VPN_URL = "https://intranet.brightline.example/kb/vpn-token#steps"
MILEAGE_QUESTION = "whats the mileage rate if i use my own car"
PINGS = ("<!channel>", "<!here>", "<!everyone>")
QUIET = 2.5  # seconds to watch for a reply that must not come


@pytest.fixture(scope="module")
def server(module_moment_app, module_database_url, slack_api):
    """One app per database backend for the tests that need no isolation."""
    slack_api.users[OWNER] = "Olive Owner"
    return module_moment_app(module_database_url)


@contextmanager
def db_session(url: str):
    database = Database(url)
    try:
        with database.session() as session:
            yield session
    finally:
        database.dispose()


def interactions(url: str, **where) -> list[Interaction]:
    with db_session(url) as session:
        query = select(Interaction).order_by(Interaction.id)
        for key, value in where.items():
            query = query.where(getattr(Interaction, key) == value)
        return list(session.scalars(query).all())


def votes(url: str, interaction_id: int) -> list[Vote]:
    with db_session(url) as session:
        return list(session.scalars(select(Vote).where(Vote.interaction_id == interaction_id)).all())


def posted_to(channel: str, thread_ts: str | None = "any"):
    def match(call) -> bool:
        if call.params.get("channel") != channel:
            return False
        return thread_ts == "any" or call.params.get("thread_ts") == thread_ts

    return match


def ok_posts(slack_api, channel: str, method: str = "chat.postMessage"):
    return slack_api.calls(method, lambda c: c.ok and c.params.get("channel") == channel)


def assert_stays(slack_api, method: str, predicate, count: int = 0, seconds: float = QUIET) -> None:
    """Exactly `count` calls of `method` match `predicate`, and no more arrive within `seconds`
    (how long a duplicate or an unwanted reply would take to show up)."""
    deadline = time.monotonic() + seconds
    while True:
        found = slack_api.calls(method, predicate)
        assert len(found) <= count, f"{len(found)} {method} calls, expected {count}: {[c.params for c in found]}"
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    assert len(found) == count, f"{len(found)} {method} calls, expected {count}"


def section_texts(blocks: list[dict]) -> str:
    out = []
    for block in blocks:
        if block.get("text"):
            out.append(block["text"].get("text", ""))
        for element in block.get("elements", []):
            if isinstance(element.get("text"), str):
                out.append(element["text"])
    return "\n".join(out)


def dm(server, user: str, text: str, **kwargs):
    event = P.im_message(text, user=user, **kwargs)
    response = server.sender.event(P.event_callback(event))
    assert response.status_code == 200, response.text
    return event


def no_pings(call) -> None:
    text = call.text()
    for ping in PINGS:
        assert ping not in text, f"{ping} sent unescaped in {call.method}: {text[:500]}"


# --- health --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_healthz_reports_database_and_index(server):
    response = server.healthz()
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok" and body["index"] == "ok" and body["status"] == "ok"
    assert int(body["chunks"]) > 0 and body["index_version"]


# --- questions -----------------------------------------------------------------------------------


def test_mention_is_answered_in_its_thread_with_source_and_link(server, slack_api):
    user, channel = P.uid(), P.uid("C")
    event = P.app_mention(VPN_QUESTION, user=user, channel=channel)
    response = server.sender.event(P.event_callback(event))
    assert response.status_code == 200

    call = slack_api.wait_for("chat.postMessage", posted_to(channel))
    assert call.ok and call.params["thread_ts"] == event["ts"]
    assert call.headers["authorization"] == "Bearer xoxb-1111-2222-momenttesttoken"
    text = section_texts(call.params["blocks"])
    assert f"<{VPN_URL}|Reset a VPN hardware token>" in text
    assert "Reset token" in text and "Owner: Olive Owner" in text  # the owner's name, not a ping
    assert f"<@{OWNER}>" not in call.text()
    assert call.params["text"].startswith("Reset a VPN hardware token")
    assert call.params.get("unfurl_links") is False
    [row] = interactions(server.database_url, user_id=user)
    assert row.surface == "mention" and row.channel_id == channel and row.thread_ts == event["ts"] and row.answered
    helpful = P.button(call.params["blocks"], ui.VOTE_HELPFUL)
    assert helpful is not None and helpful["value"] == str(row.id)


@pytest.mark.slow
def test_mention_inside_a_thread_answers_in_that_thread(server, slack_api):
    user, channel, parent = P.uid(), P.uid("C"), P.new_ts()
    event = P.app_mention(MILEAGE_QUESTION, user=user, channel=channel, thread_ts=parent)
    server.sender.event(P.event_callback(event))
    call = slack_api.wait_for("chat.postMessage", posted_to(channel))
    assert call.params["thread_ts"] == parent
    assert "Mileage and travel expenses" in section_texts(call.params["blocks"])


@pytest.mark.slow
def test_dm_is_answered_in_the_dm_and_a_thread_follow_up_in_the_thread(server, slack_api):
    user = P.uid()
    channel = P.dm_channel(user)
    dm(server, user, MILEAGE_QUESTION)
    first = slack_api.wait_for("chat.postMessage", posted_to(channel))
    assert first.ok and "thread_ts" not in first.params  # top level of the DM
    assert "67 cents per mile" in section_texts(first.params["blocks"])

    parent = first.response["ts"]
    dm(server, user, "and how do i submit the claim", thread_ts=parent)
    follow = slack_api.wait_for("chat.postMessage", posted_to(channel, parent))
    assert follow.ok and "Mileage and travel expenses" in section_texts(follow.params["blocks"])
    rows = interactions(server.database_url, user_id=user)
    assert [r.surface for r in rows] == ["dm", "dm"] and rows[1].thread_ts == parent


@pytest.mark.slow
def test_video_answer_links_to_the_second(server, slack_api):
    user = P.uid()
    dm(server, user, "how do I check tyre tread on the van")
    call = slack_api.wait_for("chat.postMessage", posted_to(P.dm_channel(user)))
    text = section_texts(call.params["blocks"])
    assert "<https://learn.brightline.example/videos/van-inspection#t=6|Daily van inspection>" in text
    assert "at 0:06" in text


def test_ask_command_acks_fast_then_answers_privately_and_share_posts_in_channel(server, slack_api):
    user, channel = P.uid(), P.uid("C")
    response_url = slack_api.response_url()
    response_url_id = response_url.rsplit("/", 1)[-1]
    started = time.monotonic()
    response = server.sender.command(
        P.slash_command(VPN_QUESTION, user=user, channel=channel, response_url=response_url)
    )
    assert response.status_code == 200 and time.monotonic() - started < 3.0

    eph = slack_api.wait_for("chat.postEphemeral", posted_to(channel))
    assert eph.ok and eph.params["user"] == user
    assert f"<{VPN_URL}|Reset a VPN hardware token>" in section_texts(eph.params["blocks"])
    share = P.button(eph.params["blocks"], ui.SHARE_ANSWER)
    assert share is not None and share["text"]["text"] == "Share in channel"
    assert not ok_posts(slack_api, channel)  # private until shared
    [row] = interactions(server.database_url, user_id=user)
    assert row.surface == "slash_command" and share["value"] == str(row.id)

    click = P.block_actions(
        action_id=ui.SHARE_ANSWER,
        value=share["value"],
        user=user,
        channel=channel,
        response_url=response_url,
        ephemeral=True,
        text="Share in channel",
    )
    assert server.sender.interaction(click).status_code == 200
    shared = slack_api.wait_for("chat.postMessage", posted_to(channel))
    assert shared.ok and "thread_ts" not in shared.params
    text = section_texts(shared.params["blocks"])
    assert f"Shared by <@{user}>" in text and f"<{VPN_URL}|Reset a VPN hardware token>" in text
    assert P.button(shared.params["blocks"], ui.SHARE_ANSWER) is None  # no share button on the public copy
    # The private copy is removed through the response_url.
    removed = slack_api.wait_for("response_url", lambda c: c.params["response_url_id"] == response_url_id)
    assert removed.params.get("delete_original") is True


@pytest.mark.slow
def test_ask_command_where_ephemeral_fails_answers_through_response_url(server, slack_api):
    user, channel = P.uid(), P.uid("D")
    response_url = slack_api.response_url()
    slack_api.fail_next("chat.postEphemeral", error="channel_not_found")
    server.sender.command(P.slash_command(MILEAGE_QUESTION, user=user, channel=channel, response_url=response_url))
    call = slack_api.wait_for("response_url", lambda c: c.params["response_url_id"] == response_url.rsplit("/", 1)[-1])
    assert call.params["response_type"] == "ephemeral"
    assert "Mileage and travel expenses" in section_texts(call.params["blocks"])


@pytest.mark.slow
def test_message_shortcut_answers_by_dm_to_the_clicker(server, slack_api):
    clicker, author, channel = P.uid(), P.uid(), P.uid("C")
    payload = P.message_shortcut(
        MILEAGE_QUESTION, user=clicker, author=author, channel=channel, response_url=slack_api.response_url()
    )
    response = server.sender.interaction(payload)
    assert response.status_code == 200
    opened = slack_api.wait_for("conversations.open", lambda c: c.params.get("users") == clicker)
    dm_id = opened.response["channel"]["id"]
    call = slack_api.wait_for("chat.postMessage", posted_to(dm_id))
    assert call.ok and "67 cents per mile" in section_texts(call.params["blocks"])
    assert not slack_api.calls("chat.postMessage", posted_to(channel))  # nothing in the channel
    [row] = interactions(server.database_url, user_id=clicker)
    assert row.surface == "shortcut" and row.channel_id == channel


def test_app_home_shows_the_persons_recent_question(server, slack_api):
    user = P.uid()
    dm(server, user, MILEAGE_QUESTION)
    slack_api.wait_for("chat.postMessage", posted_to(P.dm_channel(user)))
    server.sender.event(P.event_callback(P.app_home_opened(user=user)))
    call = slack_api.wait_for("views.publish", lambda c: c.params.get("user_id") == user)
    assert call.ok and call.params["view"]["type"] == "home"
    text = section_texts(call.params["view"]["blocks"])
    assert MILEAGE_QUESTION in text and "Mileage and travel expenses" in text

    stranger = P.uid()
    server.sender.event(P.event_callback(P.app_home_opened(user=stranger)))
    empty = slack_api.wait_for("views.publish", lambda c: c.params.get("user_id") == stranger)
    assert "Nothing yet" in section_texts(empty.params["view"]["blocks"])
    assert MILEAGE_QUESTION not in empty.text()


# --- votes and feedback --------------------------------------------------------------------------


def test_votes_and_feedback_comment_are_stored_one_vote_per_person(server, slack_api):
    user = P.uid()
    channel = P.dm_channel(user)
    dm(server, user, VPN_QUESTION)
    answer = slack_api.wait_for("chat.postMessage", posted_to(channel))
    message = P.posted_message(answer)
    value = P.button(answer.params["blocks"], ui.VOTE_HELPFUL)["value"]
    interaction_id = int(value)

    def click(action_id: str) -> None:
        payload = P.block_actions(
            action_id=action_id,
            value=value,
            user=user,
            channel=channel,
            response_url=slack_api.response_url(),
            message=message,
        )
        assert server.sender.interaction(payload).status_code == 200

    click(ui.VOTE_HELPFUL)
    thanks = slack_api.wait_for("chat.postEphemeral", posted_to(channel))
    assert thanks.params["user"] == user and "helpful" in thanks.params["text"]
    [vote] = votes(server.database_url, interaction_id)
    assert vote.user_id == user and vote.helpful is True

    click(ui.VOTE_NOT_HELPFUL)
    opened = slack_api.wait_for(
        "views.open",
        lambda c: (
            c.params["view"].get("callback_id") == ui.FEEDBACK_MODAL
            and json.loads(c.params["view"]["private_metadata"])["interaction_id"] == interaction_id
        ),
    )
    assert opened.ok and opened.params["trigger_id"]
    assert VPN_QUESTION in section_texts(opened.params["view"]["blocks"])
    [vote] = votes(server.database_url, interaction_id)
    assert vote.helpful is False  # changed, still one vote

    submission = P.view_submission(
        opened.params["view"], user=user, values={ui.FEEDBACK_BLOCK: {ui.FEEDBACK_INPUT: "  the VPN token for Mac  "}}
    )
    response = server.sender.interaction(submission)
    assert response.status_code == 200 and response.text in ("", "{}")  # closes the modal
    deadline = time.monotonic() + 10  # the comment is written after the acknowledgement
    while votes(server.database_url, interaction_id)[0].comment is None and time.monotonic() < deadline:
        time.sleep(0.1)
    [vote] = votes(server.database_url, interaction_id)
    assert vote.helpful is False and vote.comment == "the VPN token for Mac"

    other = P.uid()  # someone else's vote is their own
    payload = P.block_actions(
        action_id=ui.VOTE_HELPFUL,
        value=value,
        user=other,
        channel=channel,
        response_url=slack_api.response_url(),
        message=message,
    )
    server.sender.interaction(payload)
    slack_api.wait_for("chat.postEphemeral", lambda c: c.params.get("user") == other)
    assert sorted((v.user_id, v.helpful) for v in votes(server.database_url, interaction_id)) == sorted(
        [(user, False), (other, True)]
    )


# --- deliveries ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_retried_event_is_answered_once(server, slack_api):
    user = P.uid()
    envelope = P.event_callback(P.im_message(VPN_QUESTION, user=user))
    assert server.sender.event(envelope).status_code == 200
    assert server.sender.event(envelope, retry_num=1).status_code == 200
    assert server.sender.event(envelope, retry_num=2, retry_reason="http_error").status_code == 200
    slack_api.wait_for("chat.postMessage", posted_to(P.dm_channel(user)))
    assert_stays(slack_api, "chat.postMessage", posted_to(P.dm_channel(user)), 1)
    assert len(interactions(server.database_url, user_id=user)) == 1
    with db_session(server.database_url) as session:
        assert session.get(ProcessedEvent, f"event:{envelope['event_id']}") is not None


@pytest.mark.slow
def test_same_event_to_two_servers_sharing_a_database_is_answered_once(moment_server, database_url, slack_api):
    first = moment_server(database_url)
    second = moment_server(database_url)
    users = [P.uid() for _ in range(4)]
    envelopes = [P.event_callback(P.im_message(VPN_QUESTION, user=u)) for u in users]
    statuses: list[int] = []
    barrier = threading.Barrier(2 * len(envelopes))

    def deliver(server, envelope):
        barrier.wait(timeout=30)
        statuses.append(server.sender.event(envelope).status_code)

    threads = [threading.Thread(target=deliver, args=(s, e)) for e in envelopes for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert statuses == [200] * len(threads)
    for user in users:
        slack_api.wait_for("chat.postMessage", posted_to(P.dm_channel(user)))
    for user in users:
        assert_stays(slack_api, "chat.postMessage", posted_to(P.dm_channel(user)), 1, seconds=QUIET / len(users))
    assert sum(len(interactions(database_url, user_id=u)) for u in users) == len(users)


def test_bad_signature_is_refused_and_not_answered(server, slack_api):
    user = P.uid()
    response = server.sender.event(P.event_callback(P.im_message(VPN_QUESTION, user=user)), bad_signature=True)
    assert response.status_code == 401
    unsigned = server.sender.event(P.event_callback(P.im_message(VPN_QUESTION, user=user)), unsigned=True)
    assert unsigned.status_code == 401
    forged = server.sender.command(
        P.slash_command(VPN_QUESTION, user=user, channel=P.uid("C"), response_url=slack_api.response_url()),
        bad_signature=True,
    )
    assert forged.status_code == 401
    assert_stays(slack_api, "chat.postMessage", posted_to(P.dm_channel(user)), 0)
    assert not slack_api.calls("chat.postEphemeral", lambda c: c.params.get("user") == user)
    assert interactions(server.database_url, user_id=user) == []
    assert " 401 " in server.log() and user not in server.log()  # refused, and the body was not logged


@pytest.mark.slow
def test_replayed_request_with_an_old_timestamp_is_refused(server, slack_api):
    user = P.uid()
    envelope = P.event_callback(P.im_message(VPN_QUESTION, user=user))
    response = server.sender.event(envelope, timestamp=int(time.time()) - 600)
    assert response.status_code == 401
    assert_stays(slack_api, "chat.postMessage", posted_to(P.dm_channel(user)), 0)
    assert interactions(server.database_url, user_id=user) == []


@pytest.mark.slow
def test_rate_limited_post_is_retried_after_retry_after_and_posted_once(server, slack_api):
    user = P.uid()
    channel = P.dm_channel(user)
    slack_api.fail_next("chat.postMessage", status=429, retry_after=1, channel=channel)
    dm(server, user, VPN_QUESTION)
    posted = slack_api.wait_for("chat.postMessage", lambda c: c.ok and c.params.get("channel") == channel)
    attempts = slack_api.calls("chat.postMessage", posted_to(channel))
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].time - attempts[0].time >= 0.9  # Retry-After honoured
    assert posted.params == attempts[0].params
    assert_stays(slack_api, "chat.postMessage", posted_to(channel), 2)


@pytest.mark.slow
def test_server_error_on_post_is_retried(server, slack_api):
    user = P.uid()
    channel = P.dm_channel(user)
    slack_api.fail_next("chat.postMessage", status=503, channel=channel)
    dm(server, user, MILEAGE_QUESTION)
    slack_api.wait_for("chat.postMessage", lambda c: c.ok and c.params.get("channel") == channel)
    assert [c.status for c in slack_api.calls("chat.postMessage", posted_to(channel))] == [503, 200]


# --- hostile and odd input -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_40000_character_message_gets_a_friendly_reply_and_is_logged(server, slack_api):
    user = P.uid()
    text = (VPN_QUESTION + " ") + ("please help me with this " * 1700)
    text = text[:40000]
    dm(server, user, text)
    call = slack_api.wait_for("chat.postMessage", posted_to(P.dm_channel(user)))
    assert call.ok, call.response  # within Slack's limits
    body = section_texts(call.params["blocks"])
    assert "Your question was long" in body
    [row] = interactions(server.database_url, user_id=user)
    assert row.question_chars == 40000 and len(row.question) <= 4000


@pytest.mark.slow
def test_channel_pings_in_questions_and_content_are_never_sent(server, slack_api):
    user, channel = P.uid(), P.uid("C")
    question = "<!channel> <!here> @here <!everyone> who do I contact at the IT help desk during an outage"
    dm(server, user, question)
    answer = slack_api.wait_for("chat.postMessage", posted_to(P.dm_channel(user)))
    assert "IT help desk" in section_texts(answer.params["blocks"])
    assert "&lt;!channel&gt;" in answer.text()  # the content's own <!channel> is shown, escaped
    no_pings(answer)

    response_url = slack_api.response_url()
    server.sender.command(P.slash_command(question, user=user, channel=channel, response_url=response_url))
    eph = slack_api.wait_for("chat.postEphemeral", posted_to(channel))
    no_pings(eph)
    share = P.button(eph.params["blocks"], ui.SHARE_ANSWER)
    server.sender.interaction(
        P.block_actions(
            action_id=ui.SHARE_ANSWER,
            value=share["value"],
            user=user,
            channel=channel,
            response_url=response_url,
            ephemeral=True,
        )
    )
    shared = slack_api.wait_for("chat.postMessage", posted_to(channel))
    no_pings(shared)

    server.sender.event(P.event_callback(P.app_home_opened(user=user)))
    no_pings(slack_api.wait_for("views.publish", lambda c: c.params.get("user_id") == user))


@pytest.mark.slow
def test_bots_edits_deletions_and_joins_get_no_reply(server, slack_api):
    user = P.uid()
    channel = P.dm_channel(user)
    for event in (
        P.bot_message(VPN_QUESTION, channel=channel),
        P.own_message("Reset a VPN hardware token: Find the serial number", channel=channel),
        P.message_changed(user=user, channel=channel, old_text="vpn", new_text=VPN_QUESTION),
        P.message_deleted(user=user, channel=channel, old_text=VPN_QUESTION),
        P.channel_join(user=user, channel=channel),
    ):
        assert server.sender.event(P.event_callback(event)).status_code == 200
    # A real question afterwards is answered, and is the only reply.
    dm(server, user, MILEAGE_QUESTION)
    slack_api.wait_for("chat.postMessage", posted_to(channel))
    assert_stays(slack_api, "chat.postMessage", posted_to(channel), 1)
    [only] = slack_api.calls("chat.postMessage", posted_to(channel))
    assert "Mileage" in only.params["text"]
    assert [r.question for r in interactions(server.database_url, user_id=user)] == [MILEAGE_QUESTION]


# --- the database unavailable ----------------------------------------------------------------------


@pytest.mark.slow
def test_database_unavailable_still_answers_honestly(moment_server, slack_api):
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test?connect_timeout=3"
    server = moment_server(dead, healthy=False)
    health = server.healthz()
    assert health.status_code == 503 and health.json()["database"] != "ok" and health.json()["index"] == "ok"

    user, channel = P.uid(), P.uid("C")
    dm(server, user, VPN_QUESTION)
    call = slack_api.wait_for("chat.postMessage", posted_to(P.dm_channel(user)))
    assert call.ok
    text = section_texts(call.params["blocks"])
    assert "Reset a VPN hardware token" in text and "couldn't save this conversation" in text
    assert P.button(call.params["blocks"], ui.VOTE_HELPFUL) is None  # nothing to vote on
    spool = (server.home / "spool" / "interactions.jsonl").read_text()
    assert VPN_QUESTION in spool  # kept for when the database is back

    server.sender.command(
        P.slash_command(MILEAGE_QUESTION, user=user, channel=channel, response_url=slack_api.response_url())
    )
    eph = slack_api.wait_for("chat.postEphemeral", posted_to(channel))
    assert "Mileage and travel expenses" in section_texts(eph.params["blocks"])

    server.sender.event(P.event_callback(P.app_home_opened(user=user)))
    home = slack_api.wait_for("views.publish", lambda c: c.params.get("user_id") == user)
    assert home.ok

    click = P.block_actions(
        action_id=ui.VOTE_HELPFUL,
        value="1",
        user=user,
        channel=channel,
        response_url=slack_api.response_url(),
    )
    server.sender.interaction(click)  # a vote is kept on the host, for when the database is back
    note = slack_api.wait_for(
        "chat.postEphemeral", lambda c: c.params.get("user") == user and "helpful" in str(c.params.get("text"))
    )
    assert "noted as helpful" in note.params["text"]
    [ballot] = (server.home / "spool" / "votes.jsonl").read_text().splitlines()
    assert json.loads(ballot)["interaction_id"] == 1 and json.loads(ballot)["user_id"] == user
    assert server.process.poll() is None  # still serving
    assert server.healthz().status_code == 503
