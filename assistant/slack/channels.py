"""Help channels in Slack: answer, in the message's thread, questions nobody asked Moment, when sure.

A top-level message in a configured channel that reads as a question (`assistant.helpchannels.triage`) is queued and
marked 👀. One process at a time answers the channel's queue, oldest first, at most one post every
`MOMENT_CHANNEL_POST_INTERVAL` seconds (Slack allows about one a second per channel: a burst of 30
questions is answered in order, without a storm of 429s). An answer is posted only when it clears the
channel's confidence bar; otherwise the asker alone may get a quiet *Ask a mentor* offer. Never more than
one unasked answer per thread. The 👀 goes when Moment is done with the message.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import uuid

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.db.models import utcnow
from assistant.helpchannels.helpchannels import HelpChannels, settling, too_old
from assistant.helpchannels.triage import triage
from assistant.records.intake import Intake
from assistant.service import Asker, MomentService
from assistant.slack import blocks as ui
from assistant.slack.outbound import background_priority
from assistant.slack.posting import message_payload, post_message
from assistant.slack.workspaces import SHARED, team_of

log = logging.getLogger(__name__)

WORKING = "eyes"
LEASE_SECONDS = 60.0
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
        self.names = names  # an OwnerNames (app.py): content owners' display names
        self.interval = service.settings.channel_post_interval
        self._draining: set[str] = set()
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
        self._react(client, "reactions_add", event["channel"], event["ts"])
        if queued is True:
            self.drain_soon(client, team_of(context), event["channel"])

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
        channels = self.service.help_channels(row["team_id"])
        channel = channels.get(row["channel_id"])
        if channel is None or (row["from_bot"] and not channel.answer_bots):
            return None
        received = dt.datetime.fromisoformat(row["received_at"])
        queued = channels.enqueue(row["channel_id"], row["message_ts"], row["user_id"], row["text"], received)
        if queued and threading.current_thread().name.startswith("moment-intake-retry") and self._client is not None:
            self.drain_soon(self._client, row["team_id"], row["channel_id"])  # spooled during an outage
        return queued

    # -- the queue --------------------------------------------------------------------------------

    def drain_soon(self, client: WebClient, team: str, channel_id: str) -> None:
        """Answer the channel's queue in a thread of its own (the listener returns at once)."""
        with self._lock:
            if (team, channel_id) in self._draining:
                return  # this process is on it; the row is picked up in order
            self._draining.add((team, channel_id))
        threading.Thread(
            target=self._drain, args=(client, team, channel_id), name=f"moment-help-{channel_id}", daemon=True
        ).start()

    def _drain(self, client: WebClient, team: str, channel_id: str) -> None:
        background_priority()  # answering never delays acknowledging the next request
        holder = f"{os.uname().nodename[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        channels = self.service.help_channels(team)
        try:
            while True:
                if not channels.claim(channel_id, holder, LEASE_SECONDS):
                    return  # another process is answering this channel; it will see our row
                try:
                    self._answer_queue(client, channels, channel_id, holder)
                finally:
                    channels.release(channel_id, holder)
                if not channels.has_queued(channel_id):
                    return  # (a row queued while we released is ours again: claimed above)
        except Exception:
            log.exception("answering help channel %s failed", channel_id)
        finally:
            with self._lock:
                self._draining.discard((team, channel_id))

    def _answer_queue(self, client: WebClient, channels: HelpChannels, channel_id: str, holder: str) -> None:
        last_post = 0.0
        settled: set[int] = set()
        while True:
            item = channels.next_queued(channel_id)
            if item is None:
                # Hold the channel until the pace allows the next post, then look once more.
                time.sleep(max(0.0, last_post + self.interval - time.monotonic()))
                if not channels.has_queued(channel_id):
                    return
                continue
            if item.id not in settled:  # an earlier message may still be on its way: look again once it had time
                settled.add(item.id)  # (once per message, so a process whose clock is behind waits no longer)
                wait = settling(item)
                if wait > 0:
                    time.sleep(wait)
                    continue
            channels.claim(channel_id, holder, LEASE_SECONDS)  # extend
            try:
                status, interaction_id, last_post = self._answer_one(client, channels, item, last_post)
            except Exception:
                log.exception("help channel %s: message %s failed", channel_id, item.message_ts)
                status, interaction_id = "failed", None
            channels.finish(item.id, status, interaction_id)
            self._react(client, "reactions_remove", channel_id, item.message_ts)

    def _answer_one(self, client: WebClient, channels: HelpChannels, item, last_post: float):
        """(status, interaction id, time of the last post) for one queued message."""
        channel = channels.get(item.channel_id)
        if channel is None:
            return "dropped", None, last_post
        if too_old(item):
            return "stale", None, last_post
        asker = Asker(
            user_id=item.user_id,
            surface="help_channel",
            team_id=item.team_id,
            channel_id=item.channel_id,
            thread_ts=item.message_ts,
        )
        answer = self.service.ask(
            item.text, asker, types=channel.types or None, tags=channel.tags or None, folders=channel.folders
        )
        sure = answer.answered and answer.confidence >= channels.min_confidence(channel)
        if not sure:
            if channel.offer_mentor and answer.interaction_id is not None and item.user_id.startswith(("U", "W")):
                self._offer_privately(client, item, answer)
            return "silent", answer.interaction_id, last_post
        if not self.service.claim_delivery(f"thread-answer:{item.channel_id}:{item.message_ts}"):
            return "duplicate", answer.interaction_id, last_post  # never two unasked answers in one thread
        time.sleep(max(0.0, last_post + self.interval - time.monotonic()))
        owners = {s.owner for s in answer.sources if s.owner}
        names = self.names.lookup(client, owners) if self.names is not None else None
        try:
            post_message(
                client,
                channel=item.channel_id,
                thread_ts=item.message_ts,
                payload=ui.answer_metadata(answer),
                blocks=ui.answer_blocks(answer, owner_names=names),
                text=ui.answer_text(answer),
                unfurl_links=False,
            )
        except SlackApiError as exc:
            # Nobody asked Moment here, so nobody is waiting on it: log for the admins, don't DM the person.
            log.error("help channel %s: answer not posted: %s", item.channel_id, exc.response.get("error"))
            return "failed", answer.interaction_id, time.monotonic()
        return "answered", answer.interaction_id, time.monotonic()

    def _offer_privately(self, client: WebClient, item, answer) -> None:
        try:
            client.chat_postEphemeral(
                channel=item.channel_id,
                user=item.user_id,
                thread_ts=item.message_ts,
                blocks=ui.channel_offer_blocks(answer),
                text="I don't have an answer I'm sure of. A peer mentor can help.",
            )
        except SlackApiError as exc:
            log.info("help channel %s: private offer failed: %s", item.channel_id, exc.response.get("error"))

    @staticmethod
    def _react(client: WebClient, method: str, channel: str, ts: str) -> None:
        try:
            getattr(client, method)(channel=channel, timestamp=ts, name=WORKING)
        except SlackApiError as exc:
            log.info("%s %s failed: %s", method, WORKING, exc.response.get("error"))

    def sweep(self, client_for) -> int:
        """Answer queues a stopped process left behind, in every workspace (run by the worker);
        `client_for(team)` is the workspace's Web API client (None: it has no token any more)."""
        waiting = self.service.help_channels_waiting()
        for team, channel_id in waiting:
            client = client_for(team)
            if client is not None:
                self._drain(client, team, channel_id)
        return len(waiting)
