"""The Bolt app: what Moment reacts to in Slack. Each listener acknowledges first, then calls the
service core and renders the result with `blocks.py`.

Bolt acknowledges events itself before the listener runs (process_before_response=False, the default
for a long-running server); commands, shortcuts, actions and view submissions call `ack()` first thing.
Duplicate deliveries (Slack retries, or one event sent to two processes) are dropped by claiming the
event id in the database: exactly one process answers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from cachetools import TTLCache
from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.answering.answers import Answer
from assistant.answering.retrieval import IndexMismatchError
from assistant.db.database import DatabaseUnavailableError
from assistant.records.interactions import Asker, NotTheAskerError
from assistant.service import MomentService
from assistant.settings import Settings
from assistant.slack import blocks as ui
from assistant.slack.admin import AdminHandlers, Permissions
from assistant.slack.channels import HelpChannelHandlers, previous_question
from assistant.slack.courses import CourseHandlers
from assistant.slack.formatting import escape
from assistant.slack.installation import Installations
from assistant.slack.mentoring import MentorHandlers
from assistant.slack.outbound import background_priority, check_settings, publish_home, web_client
from assistant.slack.posting import answer_key, post_message
from assistant.slack.receipts import Receipts, question_asker
from assistant.slack.teaching import TeachHandlers
from assistant.slack.usergroup_events import UserGroupEvents
from assistant.slack.usergroups import SlackUserGroups
from assistant.slack.workspaces import OUTSIDER, OUTSIDER_NOTE, SHARED, tag_request, team_of
from indexer.store import IndexMissingError

log = logging.getLogger(__name__)

INDEX_PROBLEM = (
    "I can't search the content right now: the content index isn't available. "
    "The Moment admins can see why in the logs."
)
GENERIC_PROBLEM = "Something went wrong while I was looking that up. Please try again in a minute."
DATABASE_UNAVAILABLE = "I can't reach my database just now, so nothing changed. Please try again in a minute."
NOT_SAVED = "I couldn't save this conversation just now, so voting is off for this answer."
ONLY_THE_ASKER_SHARES = "Only the person who asked can share this answer in the channel."
NOT_SHAREABLE = (
    "This answer comes from content for some user groups only, so I can't post it where others would see it."
)
NO_FILES = "I can't read screenshots or files yet: tell me in words what you're trying to do, or what the error says."
# Why a post failed, in words for the asker (Slack's error codes), and whether the channel is unusable.
POST_FAILURES = {
    "is_archived": ("that conversation is archived", True),
    "channel_not_found": ("I can't see that conversation", True),
    "not_in_channel": ("I'm not a member of that channel (invite me with `/invite @Moment`)", True),
    "missing_scope": ("I'm missing a permission there (the Moment admins can see which in the logs)", True),
    "restricted_action": ("posting there is restricted", True),
    "msg_too_long": ("my answer was too long for Slack", False),
    "invalid_blocks": ("Slack refused my answer's layout", False),
}
# How long "Not helpful" may wait for the database before opening its modal (the trigger id lives 3 s).
MODAL_DATABASE_BUDGET = 1.2


def create_app(
    settings: Settings, service: MomentService, client: WebClient | None = None, *, socket_mode: bool = False
) -> App:
    """The Bolt app, with every listener registered."""
    check_settings(settings, socket_mode=socket_mode)
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    # Many workspaces: Bolt's OAuth flow, and each request answered with its own workspace's token.
    installations = Installations(service) if settings.multi_workspace else None
    app = App(
        signing_secret=secret,  # Socket Mode requests are not signed; HTTP ones always are, and checked
        client=client or web_client(settings),
        oauth_settings=installations.oauth_settings() if installations else None,
        process_before_response=False,
        # Listeners (retrieval, posting) run after the acknowledgement in threads of lower CPU priority,
        # so that on a busy machine acknowledging the next request never waits behind answering this one.
        listener_executor=ThreadPoolExecutor(
            max_workers=settings.web_threads, thread_name_prefix="moment-listener", initializer=background_priority
        ),
    )
    permissions = Permissions(settings.admins, settings.admin_usergroup, service.workspaces)
    operations = service.operations.indexing
    mentoring = MentorHandlers(service, permissions.is_admin)
    channels = HelpChannelHandlers(service)
    handlers = SlackHandlers(service, mentoring, permissions, channels, installations)
    app.use(tag_request(settings))  # the workspace of each request, and whether its sender is ours
    app.use(channels.intake)  # help-channel questions are queued (or spooled) before Slack is acknowledged
    app.use(handlers.receipts.middleware)  # DMs and mentions are claimed and recorded before it, too
    # Who may see restricted content: user groups read from Slack (and again when a question finds them stale)
    usergroups = SlackUserGroups(
        app.client,
        service.access.groups,
        service.access.audience_names,
        default_team=None if settings.multi_workspace else settings.default_team_id,
        # OAuth installs: a stale cache is read again with the asker's workspace's own token.
        client_for=(lambda team: installations.client_for_workspace(team, app.client)) if installations else None,
    )
    service.access.group_source = usergroups

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
    app.action(ui.SAME_QUESTION)(handlers.on_same_question)
    # The installation
    app.event("app_uninstalled")(handlers.on_uninstalled)
    app.event("tokens_revoked")(handlers.on_tokens_revoked)
    # App Home
    app.event("app_home_opened")(handlers.on_home_opened)
    # User groups (content audiences)
    group_events = UserGroupEvents(usergroups)
    app.event("subteam_members_changed")(group_events.on_members_changed)
    app.event("subteam_updated")(group_events.on_group_changed)
    app.event("subteam_created")(group_events.on_group_changed)
    # Mentors and admins
    mentoring.register(app)
    AdminHandlers(service, operations, permissions).register(app)
    TeachHandlers(service, permissions.is_admin).register(app)  # verified answers: This answered it, Pick
    CourseHandlers(service).register(app)  # a course suggestion's Not now
    app.error(handlers.on_error)
    return app


class OwnerNames:
    """Display names of content owners (users.info), cached for an hour."""

    def __init__(self, ttl: float = 3600.0, maxsize: int = 10_000) -> None:
        self.ttl = ttl
        self._cache: TTLCache[str, str] = TTLCache(maxsize=maxsize, ttl=ttl, timer=time.monotonic)
        self._lock = threading.Lock()

    def lookup(self, client: WebClient, user_ids: set[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for uid in user_ids:
            with self._lock:
                cached = self._cache.get(uid)
            if cached is not None:
                out[uid] = cached
                continue
            try:
                user = client.users_info(user=uid)["user"]
                profile = user.get("profile", {})
                name = profile.get("real_name") or profile.get("display_name") or user.get("real_name") or user["name"]
            except (SlackApiError, KeyError):
                continue
            with self._lock:
                self._cache[uid] = name
            out[uid] = name
        return out


class SlackHandlers:
    """Listeners: each one short, each one delegating to the service."""

    def __init__(
        self,
        service: MomentService,
        mentoring: MentorHandlers,
        permissions: Permissions,
        channels: HelpChannelHandlers | None = None,
        installations: Installations | None = None,
    ) -> None:
        self.installations = installations  # None in single-token mode
        self.service = service
        self.mentoring = mentoring
        self.permissions = permissions
        self.names = OwnerNames()
        self.channels = channels or HelpChannelHandlers(service)
        self.channels.answers.names = self.names
        self._reader = ThreadPoolExecutor(max_workers=2, thread_name_prefix="moment-read")
        self.receipts = Receipts(service)

    # -- questions ---------------------------------------------------------------------------

    def on_mention(self, event: dict, body: dict, client: WebClient, context: BoltContext) -> None:
        """@Moment in a channel: answer in the question's thread (privately, in a channel shared with
        another organisation; an outsider there gets a short note and nothing from the content)."""
        asker = question_asker(event, context)
        if asker is None or not self.receipts.first(body, context):
            return
        asker = self.receipts.asker(asker, context)
        if not self.receipts.take(asker):
            return  # waited so long that the worker is answering it
        if context[OUTSIDER]:
            self._tell_asker_privately(client, asker, OUTSIDER_NOTE, ephemeral_first=True)
            return
        if context[SHARED]:
            post = self._private_poster(client, asker)
        else:
            post = self._poster(client, event["channel"], asker.thread_ts, key=answer_key(asker))
        self._answer(client, event.get("text", ""), asker, post, previous=self._previous(client, event))

    def on_message(self, event: dict, body: dict, client: WebClient, context: BoltContext) -> None:
        """A direct message: answer in the DM (in the thread, for a follow-up asked in one). In a help
        channel: answer questions nobody asked Moment, when sure (see channels.py)."""
        if event.get("channel_type") in ("channel", "group"):
            if not context[SHARED]:  # unasked answers would be read by the other organisation
                self.channels.on_message(event, body, client, context)
            return
        asker = question_asker(event, context)
        if asker is None:
            return  # edits, deletions, joins, bots (and our own messages) are not questions
        if not self.receipts.first(body, context):
            return
        asker = self.receipts.asker(asker, context)
        if not self.receipts.take(asker):
            return  # waited so long that the worker is answering it
        thread_ts = asker.thread_ts
        if context[OUTSIDER]:
            self._poster(client, event["channel"], thread_ts)(None, OUTSIDER_NOTE)
            return
        notices = [NO_FILES] if event.get("files") and not (event.get("text") or "").strip() else []
        self._answer(
            client,
            event.get("text", ""),
            asker,
            self._poster(client, event["channel"], thread_ts, key=answer_key(asker)),
            previous=self._previous(client, event),
            notices=notices,
        )

    def on_ask_command(self, ack: Ack, command: dict, client: WebClient, respond, context: BoltContext) -> None:
        """/ask question: a private answer with a Share in channel button."""
        ack()
        asker = self._asker(command["user_id"], "slash_command", context, command["channel_id"])

        def post(blocks, text, payload=None):  # an ephemeral message carries no metadata
            try:
                client.chat_postEphemeral(
                    channel=command["channel_id"], user=command["user_id"], blocks=blocks, text=text
                )
            except SlackApiError as exc:  # e.g. a DM or a channel Moment is not in: reply through response_url
                log.info("chat.postEphemeral failed (%s); replying via response_url", exc.response.get("error"))
                respond(blocks=blocks, text=text, response_type="ephemeral", replace_original=False)

        self._answer(client, command.get("text", ""), asker, post, shareable=True)

    def on_ask_shortcut(self, ack: Ack, shortcut: dict, client: WebClient, context: BoltContext) -> None:
        """ "Ask Moment" on a message: the message's text is the question; the answer comes by DM."""
        ack()
        user = shortcut["user"]["id"]
        asker = self._asker(user, "shortcut", context, shortcut.get("channel", {}).get("id"))
        dm = client.conversations_open(users=user)["channel"]["id"]
        self._answer(client, shortcut.get("message", {}).get("text", ""), asker, self._poster(client, dm, None))

    # -- answers -----------------------------------------------------------------------------

    def on_vote_helpful(self, ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        user, team, interaction_id = body["user"]["id"], team_of(context), int(action["value"])
        if self._vote(ack, client, body, interaction_id, user, team, helpful=True):
            self._tell(client, body, user, ":pray: Thanks, noted as helpful.")
            self.service.records.count(interaction_id, user, True, team)

    def on_vote_not_helpful(self, ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        """Record the vote (before the acknowledgement), then open "What were you looking for?" (the trigger
        id lives 3 seconds: a slow database must not outlive it; the question is read meanwhile)."""
        deadline = time.monotonic() + MODAL_DATABASE_BUDGET
        interaction_id = int(action["value"])
        user = body["user"]["id"]
        team = team_of(context)
        question = self._reader.submit(self.service.records.answer_for, interaction_id, team)
        if not self._vote(ack, client, body, interaction_id, user, team, helpful=False):
            return  # not recorded (the person was told): no modal for a vote that isn't there
        view = ui.feedback_modal(interaction_id, self._question_of(question, deadline))
        client.views_open(trigger_id=body["trigger_id"], view=view)
        self.service.records.count(interaction_id, user, False, team)  # demotes the passage (after the modal)

    def _question_of(self, future, deadline: float) -> str:
        """The question an answer was for (`future`: `answer_for`), if the database says so before `deadline`
        ("" if not)."""
        try:
            answer = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            log.warning("feedback modal opened without the question: the database was too slow")
            return ""
        except Exception as exc:
            log.warning("feedback modal opened without the question: %r", exc)
            return ""
        return answer.question if answer else ""

    def on_feedback_submitted(self, ack: Ack, body: dict, view: dict, context: BoltContext) -> None:
        ack()
        interaction_id = int(json.loads(view.get("private_metadata") or "{}").get("interaction_id", 0))
        value = view["state"]["values"].get(ui.FEEDBACK_BLOCK, {}).get(ui.FEEDBACK_INPUT, {}).get("value")
        if interaction_id:
            comment = (value or "").strip() or None
            self.service.records.vote(interaction_id, body["user"]["id"], False, comment, team_id=team_of(context))

    def on_share(self, ack: Ack, body: dict, action: dict, client: WebClient, respond, context: BoltContext) -> None:
        """Post a private /ask answer to the channel for everyone."""
        ack()
        user = body["user"]["id"]
        try:
            answer = self.service.records.answer_for(int(action["value"]), team_of(context), asked_by=user)
        except NotTheAskerError as exc:
            log.warning("share refused: %s", exc)
            respond(text=ONLY_THE_ASKER_SHARES, response_type="ephemeral", replace_original=False)
            return
        channel = (body.get("channel") or {}).get("id")
        if answer is None or channel is None:
            respond(
                text="That answer is no longer available to share.", response_type="ephemeral", replace_original=False
            )
            return
        if answer.restricted or any(self.service.access.audience_of(s.path) for s in answer.sources):
            # Restricted when it was shown, or since (its owner added an audience): never posted for all.
            respond(text=NOT_SHAREABLE, response_type="ephemeral", replace_original=False)
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

    def on_ask_mentor(self, ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        user = body["user"]["id"]

        def tell(text: str, blocks=None) -> None:
            self._tell(client, body, user, text, blocks=blocks)

        self.mentoring.ask_mentor(ack, client, body, context, int(action["value"]), user, tell)

    def on_same_question(self, ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        """ "I have this question too": join the asker's request (told when it is taken and resolved)."""
        ack()
        user = body["user"]["id"]
        interaction_id = int(action["value"])
        try:
            new = self.service.records.follow_question(interaction_id, user, team_of(context))
        except DatabaseUnavailableError:
            self._tell(client, body, user, "I couldn't note that just now. Please try again in a minute.")
            return
        text = (
            ":raised_hands: Noted: you have this question too. I'll tell you when a mentor has answered it."
            if new
            else "You're already following this question; I'll tell you when it's answered."
        )
        self._tell(client, body, user, text)

    # -- the installation ------------------------------------------------------------------------

    def on_uninstalled(self, event: dict, context: BoltContext) -> None:
        """The workspace removed Moment: its tokens go at once (OAuth installs), and it is audited."""
        team = team_of(context)
        if self.installations is not None:
            self.installations.uninstalled(context)
        log.warning("Moment was uninstalled from workspace %s: its tokens are deleted", team)
        self._audit_install("app_uninstalled", context, f"team {team}; tokens deleted")

    def on_tokens_revoked(self, event: dict, context: BoltContext) -> None:
        """Slack revoked some of Moment's tokens in a workspace: they are deleted at once."""
        tokens = event.get("tokens") or {}
        detail = f"bot tokens: {len(tokens.get('bot') or [])}, user tokens: {len(tokens.get('oauth') or [])}"
        if self.installations is not None:
            self.installations.revoked(event, context)
        log.warning("Slack revoked Moment's tokens in workspace %s (%s)", team_of(context), detail)
        self._audit_install("tokens_revoked", context, detail)

    def _audit_install(self, action: str, context: BoltContext, detail: str) -> None:
        team = team_of(context)
        try:
            if action == "app_uninstalled":
                self.service.workspaces.uninstalled(team)
            self.service.audit.record("slack", action, True, detail, team_id=team, enterprise_id=context.enterprise_id)
        except DatabaseUnavailableError:
            log.error("audit event not stored (database unavailable): %s", action)

    # -- App Home ----------------------------------------------------------------------------

    def on_home_opened(self, event: dict, client: WebClient, context: BoltContext) -> None:
        if event.get("tab") not in (None, "home"):
            return
        user, team = event["user"], team_of(context)
        publish_home(self.service, client, user, team, self.permissions.is_admin(client, user, team))

    def on_error(self, error: Exception, body: dict, client: WebClient, logger: logging.Logger) -> None:
        """A listener raised. A database outage is one line in the log, and a person who clicked or typed
        something is told that nothing changed (never silence); anything else is logged with its traceback."""
        kind = body.get("type") if isinstance(body, dict) else None
        event = body.get("event", {}).get("type") if isinstance(body, dict) else None
        if isinstance(error, DatabaseUnavailableError):
            logger.error("Slack listener could not reach the database (%s %s): %s", kind, event, error)
            user = (body.get("user") or {}).get("id") if isinstance(body.get("user"), dict) else body.get("user_id")
            if user and kind in ("block_actions", "shortcut", "message_action", "view_submission"):
                self._tell(client, body, user, DATABASE_UNAVAILABLE)
            return
        logger.error("Slack listener failed (%s %s): %r", kind, event, error, exc_info=error)

    # -- plumbing ----------------------------------------------------------------------------

    @staticmethod
    def _asker(
        user: str, surface: str, context: BoltContext, channel: str | None, thread_ts: str | None = None
    ) -> Asker:
        """Who asked, in which workspace (and Grid org), where."""
        return Asker(
            user_id=user,
            surface=surface,
            team_id=team_of(context),
            enterprise_id=context.enterprise_id,
            channel_id=channel,
            thread_ts=thread_ts,
        )

    def _private_poster(self, client: WebClient, asker: Asker) -> Callable[..., None]:
        """Post only the asker sees (in a channel shared with another organisation)."""

        def post(blocks, text, payload=None):
            client.chat_postEphemeral(
                channel=asker.channel_id, user=asker.user_id, thread_ts=asker.thread_ts, blocks=blocks, text=text
            )

        return post

    def _poster(
        self, client: WebClient, channel: str, thread_ts: str | None, *, key: str | None = None
    ) -> Callable[..., None]:
        def post(blocks, text, payload=None):
            post_message(
                client,
                channel=channel,
                thread_ts=thread_ts,
                key=key,
                payload=payload,
                blocks=blocks,
                text=text,
                unfurl_links=False,
            )

        return post

    def _previous(self, client: WebClient, event: dict) -> str | None:
        """The earlier question of the thread a message was posted in (None at the top level)."""
        thread_ts = event.get("thread_ts")
        if not thread_ts or thread_ts == event.get("ts"):
            return None
        return previous_question(client, event["channel"], thread_ts, event["ts"])

    def _answer(
        self,
        client: WebClient,
        text: str,
        asker: Asker,
        post,
        *,
        shareable: bool = False,
        previous: str | None = None,
        notices: list[str] | None = None,
    ) -> Answer | None:
        try:
            answer = (
                self.service.asking.ask_in_thread(text, previous, asker)
                if previous
                else self.service.asking.ask(text, asker)
            )
        except (IndexMissingError, IndexMismatchError) as exc:
            log.error("no usable index for %s in %s: %s", asker.user_id, asker.channel_id, exc)
            self._post_or_report(client, asker, post, ui.problem_blocks(INDEX_PROBLEM), INDEX_PROBLEM)
            return None
        except Exception:
            log.exception("answering failed for %s in %s (%s)", asker.user_id, asker.channel_id, asker.surface)
            self._post_or_report(client, asker, post, ui.problem_blocks(GENERIC_PROBLEM), GENERIC_PROBLEM)
            return None
        answer.notices[:0] = notices or []
        if answer.interaction_id is None and answer.outcome not in ("empty", "no_words"):
            answer.notices.append(NOT_SAVED)
        names = self.names.lookup(client, {s.owner for s in answer.sources if s.owner})
        self._post_or_report(
            client,
            asker,
            post,
            ui.answer_blocks(
                answer,
                owner_names=names,
                shareable=shareable and not answer.restricted,
                teachable=answer.interaction_id is not None
                and self.permissions.is_admin(client, asker.user_id, self.service.workspaces.team(asker.team_id)),
            ),
            ui.answer_text(answer),
            payload=ui.answer_metadata(answer),
            answer=answer,
        )
        self.service.records.posted(asker)  # posted (or refused, and the asker told): the worker need not post it
        return answer

    def _post_or_report(self, client: WebClient, asker: Asker, post, blocks, text, *, payload=None, answer=None):
        """Post; when Slack refuses (archived, too long, no permission...), tell the asker another way and log it."""
        try:
            post(blocks, text, payload)
            return
        except SlackApiError as exc:
            error = exc.response.get("error") or f"HTTP {exc.response.status_code}"
        except Exception as exc:  # connection errors after the client's retries
            error = type(exc).__name__
        log.error("could not post to %s for %s (%s): %s", asker.channel_id, asker.user_id, asker.surface, error)
        why, channel_unusable = POST_FAILURES.get(error, (f"Slack said `{escape(error)}`", False))
        where = f"<#{asker.channel_id}>" if (asker.channel_id or "")[:1] in ("C", "G") else "our conversation"
        note = f":warning: I couldn't post my reply in {where}: {why}."
        if answer is not None and answer.answered and answer.sources:
            best = answer.sources[0]
            note += f" The best match was {ui.source_title_link(best)}."
        elif answer is not None:
            note += " I didn't have a vetted answer; a peer mentor can help (try `/ask` again, or DM me)."
        self._tell_asker_privately(client, asker, note, ephemeral_first=not channel_unusable)

    def _tell_asker_privately(self, client: WebClient, asker: Asker, text: str, *, ephemeral_first: bool) -> None:
        is_dm = (asker.channel_id or "").startswith("D")
        if ephemeral_first and asker.channel_id and not is_dm:
            try:
                client.chat_postEphemeral(
                    channel=asker.channel_id, user=asker.user_id, text=text, thread_ts=asker.thread_ts
                )
                return
            except SlackApiError as exc:
                log.info("ephemeral note failed too: %s", exc.response.get("error"))
        try:
            dm = client.conversations_open(users=asker.user_id)["channel"]["id"]
            if is_dm and dm == asker.channel_id and not ephemeral_first:
                return  # the DM itself is what failed
            client.chat_postMessage(channel=dm, text=text, unfurl_links=False)
        except SlackApiError as exc:
            log.error("could not tell %s that their reply failed: %s", asker.user_id, exc.response.get("error"))

    def _vote(
        self, ack: Ack, client: WebClient, body: dict, interaction_id: int, user: str, team: str, *, helpful: bool
    ) -> bool:
        """Record a vote, then acknowledge its click: a vote acknowledged is kept (in the database, or spooled
        on the host when the database cannot take it in time). False when not recorded (the person is told)
        or not this workspace's answer."""
        try:
            recorded = self.service.records.cast(interaction_id, user, helpful, team)
        except (DatabaseUnavailableError, OSError) as exc:
            log.error("vote not recorded: %s", exc)
            recorded = None
        finally:
            ack()
        if recorded is None:
            self._tell(client, body, user, "I couldn't record your vote just now. Please try again in a minute.")
            return False
        return recorded

    def _tell(self, client: WebClient, body: dict, user: str, text: str, blocks=None) -> None:
        """A private note to `user` where they clicked."""
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        thread_ts = (body.get("message") or {}).get("thread_ts")
        if channel is None:
            return
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts, blocks=blocks)
        except SlackApiError as exc:
            log.info("could not post a note to %s: %s", user, exc.response.get("error"))
