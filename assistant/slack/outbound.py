"""What Moment sends to Slack on its own initiative, shared by the listeners and the worker: the Web API
client, the App Home, the re-index summary, the notifier that mentor hand-offs speak through.

Nothing here listens to Slack, and nothing here imports a listener module (`app`, `admin`, `mentoring`,
`channels`): those import this.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import DividerBlock

from assistant.db.database import DatabaseUnavailableError
from assistant.mentoring.handoff import Handoff
from assistant.service import MomentService
from assistant.settings import Settings
from assistant.slack import admin_blocks, mentor_blocks
from assistant.slack import blocks as ui
from assistant.slack.notifier import SlackNotifier
from assistant.slack.posting import IdempotentConnectionErrorRetryHandler, IdempotentServerErrorRetryHandler

log = logging.getLogger(__name__)


def background_priority() -> None:
    """Lower this thread's CPU priority (Linux: niceness is per thread); elsewhere a no-op."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class SlackConfigError(Exception):
    """A Slack setting is missing; the message names the variable and where to find its value."""


def check_settings(settings: Settings, *, socket_mode: bool = False) -> None:
    """Raise `SlackConfigError` naming the first missing Slack setting and where to find its value."""
    if settings.multi_workspace:
        if socket_mode:
            raise SlackConfigError(
                "Socket Mode serves one workspace: set SLACK_BOT_TOKEN, or run `moment serve` over HTTP for "
                "OAuth installs (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET)."
            )
        if not settings.base_url:
            raise SlackConfigError(
                "MOMENT_BASE_URL is not set. OAuth installs need Moment's public URL (e.g. https://moment.example.com) "
                "for Slack's redirect to /slack/oauth_redirect. See docs/deploying.md, 'Many workspaces'."
            )
    elif settings.slack_bot_token is None:
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


# Slack's answers to auth.test that mean the token itself is wrong (not Slack being unwell).
REFUSED_TOKEN = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission"}


def check_slack(settings: Settings) -> None:
    """At start-up, before any worker forks: Slack takes SLACK_BOT_TOKEN (`auth.test`), or
    `SlackUnavailableError` says what to do. OAuth installs bring their tokens per workspace: nothing to
    check then."""
    from assistant.errors import SlackUnavailableError

    if settings.slack_bot_token is None:
        return
    client = web_client(settings)
    client.timeout = 10
    try:
        client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        if error in REFUSED_TOKEN:
            raise SlackUnavailableError(
                f"Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token (xoxb-…) from your Slack "
                "app's settings, OAuth & Permissions, and reinstall the app to the workspace if it was removed."
            ) from None
        raise SlackUnavailableError(
            f"Slack did not accept auth.test ({error or exc.response.status_code}) at {settings.slack_api_url}: try "
            "again later, or check SLACK_API_URL and SLACK_BOT_TOKEN."
        ) from None
    except Exception as exc:  # urllib's connection errors, timeouts, TLS problems
        reason = " ".join(str(getattr(exc, "reason", exc)).split())[:200] or type(exc).__name__
        raise SlackUnavailableError(
            f"Slack could not be reached at {settings.slack_api_url} ({reason}): check the network or proxy, and "
            "SLACK_API_URL (unset, it is https://slack.com/api/). SLACK_BOT_TOKEN was not checked."
        ) from None


def web_client(settings: Settings) -> WebClient:
    """A Web API client that retries connection errors, 429s (honouring Retry-After) and 5xx, with the
    bot token (single-token mode), or without one (many workspaces: each request brings its own)."""
    if settings.slack_bot_token is None and not settings.multi_workspace:
        check_settings(settings)  # raises, naming SLACK_BOT_TOKEN
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=settings.slack_timeout_seconds,
        retry_handlers=[
            # Connection errors and 5xx: only calls that are safe to repeat (and posts whose connection was
            # refused); posts are made idempotent by `posting.post_message`.
            IdempotentConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            IdempotentServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def handoff_for(service: MomentService, client: WebClient, team_id: str | None) -> Handoff:
    """Mentor hand-off in the workspace `team_id` that tells people in Slack through `client` (None: every
    workspace's requests, for the worker's deadlines in single-token mode)."""
    s = service.settings
    notifier = SlackNotifier(client, escalation_channel=s.escalation_channel, offer_minutes=s.mentor_offer_minutes)
    return service.handoff(notifier, team_id) if team_id else service.handoff_all(notifier)


def publish_home(service: MomentService, client: WebClient, user: str, team_id: str, is_admin: bool) -> None:
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
            for row in service.recent_interactions(user, limit=8, team_id=team_id)
        ]
        mentor = service.mentors.get(team_id, user)
        if mentor is not None and not mentor.removed:
            offered, owned = service.handoff(None, team_id).pending_for(user)
            mentor_section = mentor_blocks.mentor_home_section(mentor, offered, owned)
        if is_admin:
            status = service.status(team_id)
            admin_section = [DividerBlock(), *admin_blocks.status_blocks(status)]
    except DatabaseUnavailableError:
        log.error("App Home without history: database unavailable (user %s)", user)
        recent = []
    client.views_publish(user_id=user, view=ui.home_view(recent, mentor_section, admin_section))


def post_reindex_summary(client: WebClient, run) -> None:
    """Tell whoever asked for a re-index how it went."""
    if not run.reply_channel:
        return
    try:
        client.chat_postMessage(
            channel=run.reply_channel, blocks=admin_blocks.reindex_summary_blocks(run), text="Re-index finished."
        )
    except SlackApiError as exc:
        log.error("could not post the re-index summary: %s", exc.response.get("error"))


# A question recorded on arrival and still unanswered this long was left by a process that stopped.
QUESTION_LEFT_AFTER = dt.timedelta(seconds=60)


def answer_questions_left(service: MomentService, client_for, now: dt.datetime | None = None) -> int:
    """Answer the DMs and @mentions whose process stopped after recording them (`MomentService.receive`):
    each taken by one caller, posted with the record's delivery key, so that an answer the stopped process
    had posted already is found and not posted twice. `client_for(team)`: the workspace's client."""
    import time

    from assistant.slack.posting import post_message
    from assistant.slack.receipts import answer_key

    answered = 0
    for asker, question in service.questions_left(QUESTION_LEFT_AFTER, now):
        client = client_for(asker.team_id)
        if client is None or not asker.channel_id:
            continue
        try:
            answer = service.ask(question, asker)
            post_message(
                client,
                channel=asker.channel_id,
                thread_ts=asker.thread_ts,
                key=answer_key(asker.received_id),
                since=time.time() - 3600,
                payload=ui.answer_metadata(answer),
                blocks=ui.answer_blocks(answer),
                text=ui.answer_text(answer),
                unfurl_links=False,
            )
            answered += 1
        except Exception as exc:  # one question's failure must not stop the others
            log.error("question %s left by a stopped process not answered: %r", asker.received_id, exc)
    if answered:
        log.warning("answered %d questions left by a stopped process", answered)
    return answered
