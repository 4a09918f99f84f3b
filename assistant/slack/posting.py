"""Posting to Slack once, even when Slack answers 5xx after it has posted.

Slack sometimes times out internally after a message is already in the channel and answers 500/503. A
blind retry of `chat.postMessage` then shows the message twice. So the Web API client retries 5xx only
for calls that are safe to repeat (`RetryHandler` below), and `post_message` makes posting itself
idempotent: every message carries a key in its metadata; after a 5xx it looks in the channel (or the
thread) for a message with that key, and posts again only when there is none. When it cannot look (a
missing history scope), it does not post again: a lost message is reported to the person, a double one
cannot be taken back.
"""

from __future__ import annotations

import logging
import time
import uuid

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

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


class IdempotentServerErrorRetryHandler(ServerErrorRetryHandler):
    """Retries 500/503 for calls that can safely run twice (updates, reads, opens), not for posts."""

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        method = request.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if method in NOT_IDEMPOTENT:
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


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
    **kwargs,
):
    """`chat.postMessage` that posts at most once. `payload` goes into the message's metadata with the
    key (e.g. the question an answer was for, read back for thread follow-ups). Returns the response (or,
    when a lost response is found in the channel, a dict with `channel`, `ts` and `message`)."""
    key = key or new_key()
    metadata = {"event_type": METADATA_TYPE, "event_payload": {"key": key, **(payload or {})}}
    since = time.time() - 5
    for attempt in range(attempts):
        try:
            return client.chat_postMessage(channel=channel, thread_ts=thread_ts, metadata=metadata, **kwargs)
        except SlackApiError as exc:
            status = getattr(exc.response, "status_code", 200)
            if status < 500 or attempt == attempts - 1:
                raise
            found = find_posted(client, channel, thread_ts, key, since)
            if found is None:
                raise  # could not look: better lost (and reported) than shown twice
            if found:
                log.info("chat.postMessage answered %s but had posted; not posting again", status)
                return {"ok": True, "channel": channel, "ts": found["ts"], "message": found}
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
    for message in found.get("messages", []):
        if message_key(message) == key:
            return message
    return {}


def message_key(message: dict) -> str | None:
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != METADATA_TYPE:
        return None
    return (metadata.get("event_payload") or {}).get("key")


def message_payload(message: dict) -> dict:
    """What Moment put in a message's metadata ({} for other messages)."""
    metadata = message.get("metadata") or {}
    return dict(metadata.get("event_payload") or {}) if metadata.get("event_type") == METADATA_TYPE else {}
