"""Posting to Slack once, even when the outcome of a post is unknown.

Slack sometimes times out internally after a message is already in the channel and answers 500/503; a
connection can drop after Slack accepted a post, and an answer can come too late for the client's timeout.
A blind retry of `chat.postMessage` then shows the message twice. So the Web API client retries 5xx and
connection errors only for calls that are safe to repeat (the handlers below; a connection that was refused
never carried the request, so it is retried for any call), and `post_message` makes posting itself
idempotent: every message carries a delivery key in its metadata (`metadata.event_payload.key`, which
Slack returns with `conversations.history` / `conversations.replies` and `include_all_metadata=true`);
when the outcome is unknown it looks in the channel (or the thread) for a message with that key, and posts
again only when there is none. When it cannot look (a missing history scope), it does not post again: a
lost message is reported to the person, a double one cannot be taken back.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from http.client import HTTPException
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, ServerErrorRetryHandler

log = logging.getLogger(__name__)

METADATA_TYPE = "moment_message"
# Web API methods that change something each time they are called: never retried blindly on 5xx.
NOT_IDEMPOTENT = frozenset(
    {
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.scheduleMessage",
        "chat.meMessage",
        "files.upload",
        "files.completeUploadExternal",
        "conversations.create",
    }
)


# What a call whose outcome is unknown raises (after the client's own retries): the connection dropped or
# reset after the request was sent, or no answer within the client's timeout.
UNKNOWN_OUTCOME = (URLError, HTTPException, ConnectionError, TimeoutError, socket.timeout)


def _method(request) -> str:
    return request.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


class IdempotentServerErrorRetryHandler(ServerErrorRetryHandler):
    """Retries 500/503 for calls that can safely run twice (updates, reads, opens), not for posts."""

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        if _method(request) in NOT_IDEMPOTENT:
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


class IdempotentConnectionErrorRetryHandler(ConnectionErrorRetryHandler):
    """Retries connection errors for calls that can safely run twice; for posts only a refused connection
    (the request never left), never a dropped one (Slack may have posted)."""

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        if _method(request) in NOT_IDEMPOTENT and not _refused(error):
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


def _refused(error: BaseException | None) -> bool:
    reason = getattr(error, "reason", error)
    return isinstance(reason, ConnectionRefusedError)


def new_key() -> str:
    return uuid.uuid4().hex


def post_message(
    client: WebClient,
    *,
    channel: str,
    thread_ts: str | None = None,
    key: str | None = None,
    payload: dict | None = None,
    attempts: int = 3,
    since: float | None = None,
    **kwargs,
):
    """`chat.postMessage` that posts at most once. `payload` goes into the message's metadata with the
    key (e.g. the question an answer was for, read back for thread follow-ups). Returns the response (or,
    when a lost response is found in the channel, a dict with `channel`, `ts` and `message`). A `key` that
    may have been posted before (by a process that stopped) is looked up from `since` (a Unix time) first."""
    key = key or new_key()
    metadata = {"event_type": METADATA_TYPE, "event_payload": {"key": key, **(payload or {})}}
    if since is not None:
        found = find_posted(client, channel, thread_ts, key, since)
        if found:
            log.info("a message with key %s was posted before; not posting again", key)
            return {"ok": True, "channel": channel, "ts": found["ts"], "message": found}
    since = time.time() - 5 if since is None else since
    for attempt in range(attempts):
        try:
            return client.chat_postMessage(channel=channel, thread_ts=thread_ts, metadata=metadata, **kwargs)
        except SlackApiError as exc:
            status = getattr(exc.response, "status_code", 200)
            if status < 500 or attempt == attempts - 1:
                raise
            why = f"answered {status}"
            error: Exception = exc
        except UNKNOWN_OUTCOME as exc:
            if isinstance(exc, URLError) and _refused(exc):
                raise  # never reached Slack (the client retried it already)
            why, error = f"failed with {type(exc).__name__}", exc
        found = find_posted(client, channel, thread_ts, key, since)
        if found is None:
            raise error  # could not look: better lost (and reported) than shown twice
        if found:
            log.info("chat.postMessage %s but had posted; not posting again", why)
            return {"ok": True, "channel": channel, "ts": found["ts"], "message": found}
        if attempt == attempts - 1:
            raise error
        time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def find_posted(client: WebClient, channel: str, thread_ts: str | None, key: str, since: float) -> dict | None:
    """The message carrying `key` ({} when there is none; None when the channel cannot be read)."""
    try:
        if thread_ts:
            found = client.conversations_replies(channel=channel, ts=thread_ts, include_all_metadata=True, limit=200)
        else:
            found = client.conversations_history(
                channel=channel, oldest=f"{since:.6f}", include_all_metadata=True, limit=100
            )
    except SlackApiError as exc:
        log.warning("cannot check whether a message was posted in %s: %s", channel, exc.response.get("error"))
        return None
    except UNKNOWN_OUTCOME as exc:
        log.warning("cannot check whether a message was posted in %s: %r", channel, exc)
        return None
    for message in found.get("messages", []):
        if message_key(message) == key:
            return message
    return {}


def answer_key(asker) -> str | None:
    """The delivery key of the answer to a question received in Slack (an `Asker`): its receipt, the message
    it came in, or its record (None: a fresh key per post)."""
    if asker.receipt_key is not None:
        return f"answer:{asker.receipt_key}"
    return f"answer:{asker.received_id}" if asker.received_id is not None else None


def message_key(message: dict) -> str | None:
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != METADATA_TYPE:
        return None
    return (metadata.get("event_payload") or {}).get("key")


def message_payload(message: dict) -> dict:
    """What Moment put in a message's metadata ({} for other messages)."""
    metadata = message.get("metadata") or {}
    return dict(metadata.get("event_payload") or {}) if metadata.get("event_type") == METADATA_TYPE else {}
