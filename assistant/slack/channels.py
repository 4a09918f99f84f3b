"""Help channels in Slack: answer, in the message's thread, questions nobody asked Moment, when sure.

A top-level message in a configured channel that reads as a question (`assistant.helpchannels.triage`) is queued and
marked 👀. One process at a time answers the channel's queue, oldest first, at most one post every
`MOMENT_CHANNEL_POST_INTERVAL` seconds (Slack allows about one a second per channel: a burst of 30
questions is answered in order, without a storm of 429s). An answer is posted only when it clears the
channel's confidence bar; otherwise the asker alone may get a quiet *Ask a mentor* offer. Never more than
one unasked answer per thread. The 👀 goes when Moment is done with the message.

This module listens and queues; the queue is answered by `outbound.HelpChannelAnswers`, which the worker
also uses for queues a stopped process left behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.db.models import utcnow
from assistant.helpchannels.triage import triage
from assistant.records.intake import Intake
from assistant.service import MomentService
from assistant.slack.outbound import HelpChannelAnswers, mark_working
from assistant.slack.posting import message_payload
from assistant.slack.workspaces import SHARED, team_of

log = logging.getLogger(__name__)

QUEUED = "moment_help_queued"  # context key set by `intake`: True, False (queued before), SPOOLED
SPOOLED = "spooled"


def previous_question(client: WebClient, channel: str, thread_ts: str, current_ts: str) -> str | None:
    """The thread's earlier question: the one Moment last answered in it (from its message's metadata),
    else the thread's first message when a person wrote it. None when the thread cannot be read."""
    try:
        found = client.conversations_replies(channel=channel, ts=thread_ts, include_all_metadata=True, limit=100)
    except SlackApiError as exc:
        log.info("no thread context in %s: %s", channel, exc.response.get("error"))
        return None
    messages = [m for m in found.get("messages", []) if m.get("ts") != current_ts]
    for message in reversed(messages):
        question = message_payload(message).get("question")
        if question:
            return question
    root = next((m for m in messages if m.get("ts") == thread_ts), None)
    if root and not root.get("bot_id") and (root.get("text") or "").strip():
        return root["text"]
    return None


class HelpChannelHandlers:
    def __init__(self, service: MomentService, names=None) -> None:
        self.service = service
        self.answers = HelpChannelAnswers(service, names)  # answers the queue (outbound: the worker's too)
        self._lock = threading.Lock()
        self._intake: Intake | None = None
        self._client: WebClient | None = None  # the app's client, for questions queued from the spool

    # -- events -----------------------------------------------------------------------------------

    def intake(self, body: dict, context: BoltContext, client: WebClient, next) -> None:
        """Bolt global middleware: a message in a channel that reads as a question is queued before Slack is
        acknowledged, so the queue's order (by message ts) is the order people asked in, whatever the
        listener threads are doing; while the database is down or slow it is spooled on this host and
        queued when the database is back (`assistant.records.intake`)."""
        event = body.get("event") or {}
        in_channel = event.get("type") == "message" and event.get("channel_type") in ("channel", "group")
        if body.get("type") == "event_callback" and in_channel and not context[SHARED]:
            row = self._question(event, context)
            if row is not None:
                self._client = client
                written, queued = self.intake_for().record(row)
                context[QUEUED] = queued if written else SPOOLED
        return next()

    def on_message(self, event: dict, body: dict, client: WebClient, context: BoltContext) -> None:
        """A message in a public or private channel, queued by `intake`: marked 👀 and answered in turn."""
        queued = context.get(QUEUED)
        if queued is None or queued is False:
            return  # not a question for a help channel, or already queued (a redelivery, another process)
        mark_working(client, "reactions_add", event["channel"], event["ts"])
        if queued is True:
            self.answers.drain_soon(client, team_of(context), event["channel"])

    def _question(self, event: dict, context: BoltContext) -> dict | None:
        """The queue row of a top-level message that reads as a question (nothing asked of the database)."""
        subtype = event.get("subtype")
        if subtype not in (None, "bot_message", "file_share"):
            return None  # edits, deletions, joins, replies also sent to the channel
        if event.get("thread_ts") and event.get("thread_ts") != event.get("ts"):
            return None  # a reply: people are talking; Moment joins a thread only when mentioned
        bot_user, bot_id = context.bot_user_id, context.bot_id
        if (bot_user and event.get("user") == bot_user) or (bot_id and event.get("bot_id") == bot_id):
            return None  # our own message
        text = event.get("text") or ""
        if bot_user and f"<@{bot_user}" in text:
            return None  # an @mention: answered as one (app_mention), not twice
        verdict = triage(text)
        if not verdict.take:
            log.debug("channel %s: not taken (%s)", event.get("channel"), verdict.reason)
            return None
        return {
            "team_id": team_of(context),
            "channel_id": event["channel"],
            "message_ts": event["ts"],
            "user_id": event.get("user") or event.get("bot_id") or "unknown",
            "text": text,
            "from_bot": bool(event.get("bot_id")) or subtype == "bot_message",
            "received_at": utcnow().isoformat(),
        }

    def intake_for(self) -> Intake:
        if self._intake is None:
            with self._lock:
                if self._intake is None:
                    self._intake = Intake(
                        self.service.settings.home / "spool" / "help-questions.jsonl",
                        self.service.database_fingerprint,
                        self._enqueue,
                    )
        return self._intake

    def _enqueue(self, row: dict) -> bool | None:
        """Queue a message when its channel is a help channel (True; False when it already was; None when it is
        no help channel's question). Called again for a spooled row when the database is back."""
        channels = self.service.help_channels.of(row["team_id"])
        channel = channels.get(row["channel_id"])
        if channel is None or (row["from_bot"] and not channel.answer_bots):
            return None
        received = dt.datetime.fromisoformat(row["received_at"])
        queued = channels.enqueue(row["channel_id"], row["message_ts"], row["user_id"], row["text"], received)
        if queued and threading.current_thread().name.startswith("moment-intake-retry") and self._client is not None:
            self.answers.drain_soon(self._client, row["team_id"], row["channel_id"])  # spooled during an outage
        return queued
