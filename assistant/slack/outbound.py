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
import time
import uuid

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import DividerBlock

from assistant.answering.passages import document_url
from assistant.db.database import DatabaseUnavailableError
from assistant.errors import MomentError, SlackUnavailableError
from assistant.helpchannels.helpchannels import HelpChannels, settling, too_old
from assistant.insights import GapDetail
from assistant.insights.gaps import SLACK_USER_ID
from assistant.mentoring.handoff import Handoff
from assistant.records.interactions import Asker
from assistant.records.reports import Report, chart_png, to_markdown
from assistant.service import MomentService
from assistant.settings import Settings
from assistant.slack import admin_blocks, mentor_blocks
from assistant.slack import blocks as ui
from assistant.slack.formatting import escape, escaped, link, mention
from assistant.slack.notifier import SlackNotifier
from assistant.slack.posting import (
    IdempotentConnectionErrorRetryHandler,
    IdempotentServerErrorRetryHandler,
    post_message,
)
from assistant.slack.usergroups import SlackUserGroups

log = logging.getLogger(__name__)


def background_priority() -> None:
    """Lower this thread's CPU priority (Linux: niceness is per thread); elsewhere a no-op."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class SlackConfigError(MomentError):
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
    return service.mentoring.handoff(notifier, team_id) if team_id else service.mentoring.handoff_all(notifier)


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
            for row in service.records.recent_interactions(user, limit=8, team_id=team_id)
        ]
        mentor = service.mentors.get(team_id, user)
        if mentor is not None and not mentor.removed:
            offered, owned = service.mentoring.handoff(None, team_id).pending_for(user)
            mentor_section = mentor_blocks.mentor_home_section(mentor, offered, owned)
        if is_admin:
            status = service.operations.status(team_id)
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
    """Answer the DMs and @mentions whose process stopped after recording them (`Interactions.receive`, or
    spooled on this host: written first, with the votes spooled here), and post the answers recorded and
    never noted as posted: each taken by one caller, posted with the question's delivery key, so that an
    answer the stopped process had posted already is found and not posted twice. `client_for(team)`: the
    workspace's client."""
    service.records.replay_spooled()
    answered = 0
    for asker, question in service.records.questions_left(QUESTION_LEFT_AFTER, now):
        try:
            answered += _post_answer(service, client_for, asker, lambda a=asker, q=question: service.asking.ask(q, a))
        except Exception as exc:  # one question's failure must not stop the others
            log.error("question %s left by a stopped process not answered: %r", asker.received_id, exc)
    for asker, answer, asked_at in service.records.answers_unposted(3 * QUESTION_LEFT_AFTER, now):
        try:
            answered += _post_answer(service, client_for, asker, lambda a=answer: a, since=asked_at.timestamp())
        except Exception as exc:
            log.error("answer %s left unposted by a stopped process not posted: %r", asker.received_id, exc)
    if answered:
        log.warning("answered %d questions left by a stopped process", answered)
    return answered


def _post_answer(service: MomentService, client_for, asker, answer_of, since: float | None = None) -> int:
    """Post a question's answer (`answer_of()`) once, under its delivery key; 1 when done (or found posted)."""
    import time

    from assistant.slack.posting import answer_key

    client = client_for(asker.team_id)
    if client is None or not asker.channel_id:
        return 0
    answer = answer_of()
    post_message(
        client,
        channel=asker.channel_id,
        thread_ts=asker.thread_ts,
        key=answer_key(asker),
        since=(since if since is not None else time.time() - 3600) - 5,
        payload=ui.answer_metadata(answer),
        blocks=ui.answer_blocks(answer),
        text=ui.answer_text(answer),
        unfurl_links=False,
    )
    service.records.posted(asker)
    return 1


def group_source(service: MomentService, client: WebClient, settings: Settings) -> SlackUserGroups:
    """Slack's user groups, read into the shared cache (by the worker on a schedule, and when a question finds
    the cache stale)."""
    return SlackUserGroups(
        client,
        service.access.groups,
        service.access.audience_names,
        default_team=None if settings.multi_workspace else settings.default_team_id,
    )


def installations_of(service: MomentService):
    """The workspaces' OAuth installations (their tokens), for a process that sends to many workspaces."""
    from assistant.slack.installation import Installations

    return Installations(service)


def post_digest(client: WebClient, channel: str, report: Report, days: int) -> None:
    """The L&D report as blocks in `channel` (raises what Slack raises: the digest was not delivered)."""
    post_message(
        client, channel=channel, blocks=admin_blocks.report_blocks(report), text=f"Moment: the last {days} days"
    )


def upload_digest_files(client: WebClient, channel: str, report: Report, now: dt.datetime) -> None:
    """The digest's chart and the full report (Markdown), as files under it."""
    client.files_upload_v2(
        channel=channel,
        content=chart_png(report),
        filename=f"moment-{now:%Y-%m-%d}.png",
        title=f"Questions and helpful rate per day, to {now:%-d %b %Y}",
        initial_comment="Questions and helpful rate per day.",
    )
    client.files_upload_v2(
        channel=channel,
        content=to_markdown(report).encode(),
        filename=f"moment-report-{now:%Y-%m-%d}.md",
        title="The full report (Markdown)",
    )


def review_reminder_text(docs: list, content_base_url: str | None) -> str:
    """What a content owner is told about the items they own past their review date."""
    lines = [
        f"• {link(document_url(d, content_base_url), d.meta.title)} (`{escape(d.path)}`), "
        f"due {d.meta.review_due():%-d %b %Y}"
        for d in sorted(docs, key=lambda d: d.meta.review_due())
    ]
    items = f"{len(docs)} items past their" if len(docs) != 1 else "1 item past its"
    return (
        f":calendar: You own {items} review date. Please check each one and update its `reviewed:` date "
        "(or tell L&D it can go):\n" + "\n".join(lines[:40])
    )


def send_direct_message(client: WebClient, user: str, text: str) -> None:
    """A DM from Moment to `user` (raises what Slack raises)."""
    channel = client.conversations_open(users=user)["channel"]["id"]
    client.chat_postMessage(channel=channel, text=text, unfurl_links=False)


GAP_QUESTIONS_TOLD = 15  # questions a content owner's DM lists (the rest: `moment gaps show`, the Gaps page)


def gap_owner_text(detail: GapDetail, assigned_by: str | None = None) -> str:
    """What a content owner is told when a gap is given to them: its label and its questions (escaped)."""
    gap = detail.gap
    by = f"{mention(assigned_by)} gave you" if assigned_by and SLACK_USER_ID.match(assigned_by) else "You were given"
    distinct = list(dict.fromkeys(q.question for q in detail.questions))
    lines = [f"• {escaped(q, 300)}" for q in distinct[:GAP_QUESTIONS_TOLD]]
    if len(distinct) > GAP_QUESTIONS_TOLD:
        lines.append(f"…and {len(distinct) - GAP_QUESTIONS_TOLD} more.")
    return (
        f":mag: {by} a content gap (gap {gap.id}): *{escaped(gap.label, 150)}*. People asked this "
        f"{gap.size} {'time' if gap.size == 1 else 'times'} and Moment's content did not answer them well:\n"
        + "\n".join(lines)
        + "\nPlease add or update the content that answers them. After the next re-index Moment asks them again "
        "and closes the gap when they are answered."
    )


def tell_gap_owner(client: WebClient, detail: GapDetail, assigned_by: str | None = None) -> None:
    """DM the owner of a gap just assigned (raises what Slack raises: the owner was not told)."""
    send_direct_message(client, detail.gap.owner_id, gap_owner_text(detail, assigned_by))


def tell_gap_answered(client: WebClient, detail: GapDetail) -> None:
    """DM a gap's owner that Moment closed it: its questions are answered by the content now."""
    gap = detail.gap
    send_direct_message(
        client,
        gap.owner_id,
        f":white_check_mark: The content gap you own, *{escaped(gap.label, 150)}* (gap {gap.id}), is closed: "
        f"asked again after the content changed, its questions are answered ({gap.now_answered}). Thank you.",
    )


WORKING = "eyes"  # the reaction on a help-channel question while Moment is on it
LEASE_SECONDS = 60.0  # how long a process holds a help channel's queue without extending its claim


def mark_working(client: WebClient, method: str, channel: str, ts: str) -> None:
    """Add (`reactions_add`) or remove (`reactions_remove`) the reaction that says Moment is on a message."""
    try:
        getattr(client, method)(channel=channel, timestamp=ts, name=WORKING)
    except SlackApiError as exc:
        log.info("%s %s failed: %s", method, WORKING, exc.response.get("error"))


class HelpChannelAnswers:
    """Answers help channels' queues: one process at a time per channel, oldest first, at Slack's pace, in the
    question's thread when sure (`channels` queues a question; the worker answers what a stopped process
    left)."""

    def __init__(self, service: MomentService, names=None) -> None:
        self.service = service
        self.names = names  # an OwnerNames (app.py): content owners' display names
        self.interval = service.settings.channel_post_interval
        self._draining: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

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
        channels = self.service.help_channels.of(team)
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
            mark_working(client, "reactions_remove", channel_id, item.message_ts)

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
        answer = self.service.asking.ask(
            item.text, asker, types=channel.types or None, tags=channel.tags or None, folders=channel.folders
        )
        sure = answer.answered and answer.confidence >= channels.min_confidence(channel)
        if not sure:
            if channel.offer_mentor and answer.interaction_id is not None and item.user_id.startswith(("U", "W")):
                self._offer_privately(client, item, answer)
            return "silent", answer.interaction_id, last_post
        if not self.service.claims.claim(f"thread-answer:{item.channel_id}:{item.message_ts}")[0]:
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

    def sweep(self, client_for) -> int:
        """Answer queues a stopped process left behind, in every workspace (run by the worker);
        `client_for(team)` is the workspace's Web API client (None: it has no token any more)."""
        waiting = self.service.help_channels.waiting()
        for team, channel_id in waiting:
            client = client_for(team)
            if client is not None:
                self._drain(client, team, channel_id)
        return len(waiting)
