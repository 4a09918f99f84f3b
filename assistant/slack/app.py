"""The Bolt app: what Moment reacts to in Slack. Each listener acknowledges first, then calls the
service core and renders the result with `blocks.py`.

Bolt acknowledges events itself before the listener runs (process_before_response=False, the default
for a long-running server); commands, shortcuts, actions and view submissions call `ack()` first thing.
Duplicate deliveries (Slack retries, or one event sent to two processes) are dropped by claiming the
event id in the database: exactly one process answers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.models.blocks import DividerBlock

from assistant.answers import Answer
from assistant.db.database import DatabaseUnavailableError
from assistant.operations import IndexOperations, collect_status
from assistant.retrieval import IndexMismatchError
from assistant.service import Asker, MomentService
from assistant.settings import Settings
from assistant.slack import admin_blocks, mentor_blocks
from assistant.slack import blocks as ui
from assistant.slack.admin import AdminHandlers, Permissions
from assistant.slack.mentoring import MentorHandlers
from indexer.store import IndexMissingError

log = logging.getLogger(__name__)

INDEX_PROBLEM = (
    "I can't search the content right now: the content index isn't available. "
    "The Moment admins can see why in the logs."
)
GENERIC_PROBLEM = "Something went wrong while I was looking that up. Please try again in a minute."
NOT_SAVED = "I couldn't save this conversation just now, so voting is off for this answer."


def _background_priority() -> None:
    """Lower this thread's CPU priority (Linux: niceness is per thread); elsewhere a no-op."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class SlackConfigError(Exception):
    """A Slack setting is missing; the message names the variable and where to find its value."""


def check_settings(settings: Settings, *, socket_mode: bool = False) -> None:
    """Raise `SlackConfigError` naming the first missing Slack setting and where to find its value."""
    if settings.slack_bot_token is None:
        raise SlackConfigError(
            "SLACK_BOT_TOKEN is not set. Find it in your Slack app's settings under OAuth & Permissions → "
            "Bot User OAuth Token (it starts with xoxb-). See README.md, 'Connect to Slack'."
        )
    if socket_mode and settings.slack_app_token is None:
        raise SlackConfigError(
            "SLACK_APP_TOKEN is not set. Socket Mode needs an app-level token: in your Slack app's settings, "
            "Basic Information → App-Level Tokens → Generate, with the connections:write scope (it starts with xapp-)."
        )
    if not socket_mode and settings.slack_signing_secret is None:
        raise SlackConfigError(
            "SLACK_SIGNING_SECRET is not set. Find it in your Slack app's settings under Basic Information → "
            "App Credentials → Signing Secret. See README.md, 'Connect to Slack'."
        )


def web_client(settings: Settings) -> WebClient:
    """A Web API client that retries connection errors, 429s (honouring Retry-After) and 5xx. Needs only
    the bot token (the worker posts, but receives nothing)."""
    if settings.slack_bot_token is None:
        check_settings(settings)  # raises, naming SLACK_BOT_TOKEN
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=15,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def create_app(
    settings: Settings, service: MomentService, client: WebClient | None = None, *, socket_mode: bool = False
) -> App:
    """The Bolt app, with every listener registered."""
    check_settings(settings, socket_mode=socket_mode)
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    app = App(
        signing_secret=secret,  # Socket Mode requests are not signed; HTTP ones always are, and checked
        client=client or web_client(settings),
        process_before_response=False,
        # Listeners (retrieval, posting) run after the acknowledgement in threads of lower CPU priority,
        # so that on a busy machine acknowledging the next request never waits behind answering this one.
        listener_executor=ThreadPoolExecutor(
            max_workers=settings.web_threads, thread_name_prefix="moment-listener", initializer=_background_priority
        ),
    )
    permissions = Permissions(settings.admins, settings.admin_usergroup)
    operations = IndexOperations(settings, service.database, service.retriever.store, service.retriever.embedder)
    mentoring = MentorHandlers(service, permissions.is_admin)
    handlers = SlackHandlers(service, mentoring, permissions)

    # Questions
    app.event("app_mention")(handlers.on_mention)
    app.event("message")(handlers.on_message)
    app.command("/ask")(handlers.on_ask_command)
    app.shortcut(ui.ASK_SHORTCUT)(handlers.on_ask_shortcut)
    # Answers
    app.action(ui.VOTE_HELPFUL)(handlers.on_vote_helpful)
    app.action(ui.VOTE_NOT_HELPFUL)(handlers.on_vote_not_helpful)
    app.view(ui.FEEDBACK_MODAL)(handlers.on_feedback_submitted)
    app.action(ui.SHARE_ANSWER)(handlers.on_share)
    app.action(ui.ASK_MENTOR)(handlers.on_ask_mentor)
    # App Home
    app.event("app_home_opened")(handlers.on_home_opened)
    # Mentors and admins
    mentoring.register(app)
    AdminHandlers(service, operations, permissions).register(app)
    app.error(handlers.on_error)
    return app


def publish_home(service: MomentService, client: WebClient, user: str, is_admin: bool) -> None:
    """App Home: the person's recent questions; for mentors their queue; for admins the status."""
    mentor_section: list = []
    admin_section: list = []
    try:
        recent = [
            {
                "question": row.question,
                "answered": row.answered,
                "when": row.created_at,
                "top_title": row.sources[0].title if row.sources else None,
                "top_url": row.sources[0].url if row.sources else None,
            }
            for row in service.recent_interactions(user, limit=8)
        ]
        mentor = service.mentors.get(user)
        if mentor is not None and mentor.removed_at is None:
            offered, owned = service.handoff(None).pending_for(user)
            mentor_section = mentor_blocks.mentor_home_section(mentor, offered, owned)
        if is_admin:
            operations = IndexOperations(
                service.settings, service.database, service.retriever.store, service.retriever.embedder
            )
            admin_section = [DividerBlock(), *admin_blocks.status_blocks(collect_status(service, operations))]
    except DatabaseUnavailableError:
        log.error("App Home without history: database unavailable (user %s)", user)
        recent = []
    client.views_publish(user_id=user, view=ui.home_view(recent, mentor_section, admin_section))


class OwnerNames:
    """Display names of content owners (users.info), cached for an hour."""

    def __init__(self, ttl: float = 3600.0) -> None:
        self.ttl = ttl
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def lookup(self, client: WebClient, user_ids: set[str]) -> dict[str, str]:
        now = time.monotonic()
        out: dict[str, str] = {}
        for uid in user_ids:
            with self._lock:
                cached = self._cache.get(uid)
            if cached and now - cached[0] < self.ttl:
                out[uid] = cached[1]
                continue
            try:
                user = client.users_info(user=uid)["user"]
                profile = user.get("profile", {})
                name = profile.get("real_name") or profile.get("display_name") or user.get("real_name") or user["name"]
            except (SlackApiError, KeyError):
                continue
            with self._lock:
                self._cache[uid] = (now, name)
            out[uid] = name
        return out


class SlackHandlers:
    """Listeners: each one short, each one delegating to the service."""

    def __init__(self, service: MomentService, mentoring: MentorHandlers, permissions: Permissions) -> None:
        self.service = service
        self.mentoring = mentoring
        self.permissions = permissions
        self.names = OwnerNames()

    # -- questions ---------------------------------------------------------------------------

    def on_mention(self, event: dict, body: dict, client: WebClient, context: BoltContext) -> None:
        """@Moment in a channel: answer in the question's thread."""
        if event.get("bot_id") or not self._first_delivery(body):
            return
        asker = Asker(
            user_id=event.get("user", "unknown"),
            surface="mention",
            team_id=body.get("team_id"),
            channel_id=event["channel"],
            thread_ts=event.get("thread_ts") or event["ts"],
        )
        self._answer(client, event.get("text", ""), asker, self._poster(client, event["channel"], asker.thread_ts))

    def on_message(self, event: dict, body: dict, client: WebClient) -> None:
        """A direct message: answer in the DM (in the thread, for a follow-up asked in one)."""
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return  # edits, deletions, joins, bots (and our own messages) are not questions
        if not self._first_delivery(body):
            return
        asker = Asker(
            user_id=event.get("user", "unknown"),
            surface="dm",
            team_id=body.get("team_id"),
            channel_id=event["channel"],
            thread_ts=event.get("thread_ts"),
        )
        self._answer(
            client, event.get("text", ""), asker, self._poster(client, event["channel"], event.get("thread_ts"))
        )

    def on_ask_command(self, ack: Ack, command: dict, client: WebClient, respond) -> None:
        """/ask question: a private answer with a Share in channel button."""
        ack()
        asker = Asker(
            user_id=command["user_id"],
            surface="slash_command",
            team_id=command.get("team_id"),
            channel_id=command["channel_id"],
        )

        def post(blocks, text):
            try:
                client.chat_postEphemeral(
                    channel=command["channel_id"], user=command["user_id"], blocks=blocks, text=text
                )
            except SlackApiError as exc:  # e.g. a DM or a channel Moment is not in: reply through response_url
                log.info("chat.postEphemeral failed (%s); replying via response_url", exc.response.get("error"))
                respond(blocks=blocks, text=text, response_type="ephemeral", replace_original=False)

        self._answer(client, command.get("text", ""), asker, post, shareable=True)

    def on_ask_shortcut(self, ack: Ack, shortcut: dict, client: WebClient) -> None:
        """ "Ask Moment" on a message: the message's text is the question; the answer comes by DM."""
        ack()
        user = shortcut["user"]["id"]
        channel = shortcut.get("channel", {}).get("id")
        asker = Asker(user_id=user, surface="shortcut", team_id=shortcut.get("team", {}).get("id"), channel_id=channel)
        dm = client.conversations_open(users=user)["channel"]["id"]
        self._answer(client, shortcut.get("message", {}).get("text", ""), asker, self._poster(client, dm, None))

    # -- answers -----------------------------------------------------------------------------

    def on_vote_helpful(self, ack: Ack, body: dict, action: dict, client: WebClient) -> None:
        ack()
        user = body["user"]["id"]
        if self._vote(client, body, int(action["value"]), user, helpful=True):
            self._tell(client, body, user, ":pray: Thanks, noted as helpful.")

    def on_vote_not_helpful(self, ack: Ack, body: dict, action: dict, client: WebClient) -> None:
        ack()
        interaction_id = int(action["value"])
        user = body["user"]["id"]
        if not self._vote(client, body, interaction_id, user, helpful=False):
            return
        answer = self.service.answer_for(interaction_id)
        client.views_open(
            trigger_id=body["trigger_id"], view=ui.feedback_modal(interaction_id, answer.question if answer else "")
        )

    def on_feedback_submitted(self, ack: Ack, body: dict, view: dict) -> None:
        ack()
        interaction_id = int(json.loads(view.get("private_metadata") or "{}").get("interaction_id", 0))
        value = view["state"]["values"].get(ui.FEEDBACK_BLOCK, {}).get(ui.FEEDBACK_INPUT, {}).get("value")
        if interaction_id:
            self.service.vote(interaction_id, body["user"]["id"], helpful=False, comment=(value or "").strip() or None)

    def on_share(self, ack: Ack, body: dict, action: dict, client: WebClient, respond) -> None:
        """Post a private /ask answer to the channel for everyone."""
        ack()
        user = body["user"]["id"]
        answer = self.service.answer_for(int(action["value"]))
        channel = (body.get("channel") or {}).get("id")
        if answer is None or channel is None:
            respond(
                text="That answer is no longer available to share.", response_type="ephemeral", replace_original=False
            )
            return
        names = self.names.lookup(client, {s.owner for s in answer.sources if s.owner})
        try:
            client.chat_postMessage(
                channel=channel,
                blocks=ui.answer_blocks(answer, owner_names=names, shared_by=user),
                text=ui.answer_text(answer),
            )
        except SlackApiError as exc:
            log.info("share failed: %s", exc.response.get("error"))
            respond(
                text="I couldn't post in this channel. Invite me (/invite @Moment) and try again.",
                replace_original=False,
            )
            return
        respond(delete_original=True)

    def on_ask_mentor(self, ack: Ack, body: dict, action: dict, client: WebClient) -> None:
        ack()
        user = body["user"]["id"]
        self.mentoring.ask_mentor(
            client, body, int(action["value"]), user, lambda text: self._tell(client, body, user, text)
        )

    # -- App Home ----------------------------------------------------------------------------

    def on_home_opened(self, event: dict, client: WebClient) -> None:
        if event.get("tab") not in (None, "home"):
            return
        user = event["user"]
        publish_home(self.service, client, user, self.permissions.is_admin(client, user))

    def on_error(self, error: Exception, body: dict, logger: logging.Logger) -> None:
        kind = body.get("type") if isinstance(body, dict) else None
        event = body.get("event", {}).get("type") if isinstance(body, dict) else None
        logger.error("Slack listener failed (%s %s): %r", kind, event, error, exc_info=error)

    # -- plumbing ----------------------------------------------------------------------------

    def _first_delivery(self, body: dict) -> bool:
        event_id = body.get("event_id")
        if not event_id:
            return True
        try:
            return self.service.claim_delivery(f"event:{event_id}")
        except DatabaseUnavailableError:
            log.error("cannot de-duplicate event %s: database unavailable; answering anyway", event_id)
            return True

    def _poster(self, client: WebClient, channel: str, thread_ts: str | None) -> Callable[[list, str], None]:
        def post(blocks, text):
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, blocks=blocks, text=text, unfurl_links=False)

        return post

    def _answer(self, client: WebClient, text: str, asker: Asker, post, *, shareable: bool = False) -> Answer | None:
        try:
            answer = self.service.ask(text, asker)
        except (IndexMissingError, IndexMismatchError) as exc:
            log.error("no usable index for %s in %s: %s", asker.user_id, asker.channel_id, exc)
            post(ui.problem_blocks(INDEX_PROBLEM), INDEX_PROBLEM)
            return None
        except Exception:
            log.exception("answering failed for %s in %s (%s)", asker.user_id, asker.channel_id, asker.surface)
            post(ui.problem_blocks(GENERIC_PROBLEM), GENERIC_PROBLEM)
            return None
        if answer.interaction_id is None and answer.outcome not in ("empty", "no_words"):
            answer.notices.append(NOT_SAVED)
        names = self.names.lookup(client, {s.owner for s in answer.sources if s.owner})
        post(ui.answer_blocks(answer, owner_names=names, shareable=shareable), ui.answer_text(answer))
        return answer

    def _vote(self, client: WebClient, body: dict, interaction_id: int, user: str, *, helpful: bool) -> bool:
        try:
            self.service.vote(interaction_id, user, helpful)
        except DatabaseUnavailableError:
            self._tell(client, body, user, "I couldn't record your vote just now. Please try again in a minute.")
            return False
        return True

    def _tell(self, client: WebClient, body: dict, user: str, text: str) -> None:
        """A private note to `user` where they clicked."""
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        thread_ts = (body.get("message") or {}).get("thread_ts")
        if channel is None:
            return
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
        except SlackApiError as exc:
            log.info("could not post a note to %s: %s", user, exc.response.get("error"))
