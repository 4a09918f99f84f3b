"""`/moment …` for admins (and `/moment help` for everyone), drafts approval, and who is an admin.

Admins are the Slack user IDs in MOMENT_ADMINS, plus the members of MOMENT_ADMIN_USERGROUP when set.
Every admin command, allowed or refused, is written to the audit log.
"""

from __future__ import annotations

import logging
import re
import threading
import time

from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.db.database import DatabaseUnavailableError
from assistant.db.models import AuditEvent
from assistant.handoff import HandoffError
from assistant.mentors import MentorError
from assistant.operations import IndexOperations, collect_status
from assistant.reports import build_report
from assistant.service import MomentService
from assistant.slack import admin_blocks as ui
from assistant.slack import mentor_blocks
from assistant.slack.formatting import escape

log = logging.getLogger(__name__)

USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


class Permissions:
    """Who is an admin: MOMENT_ADMINS, plus a user group's members (cached for five minutes)."""

    def __init__(self, admins: list[str], usergroup: str | None, ttl: float = 300.0) -> None:
        self.admins = set(admins)
        self.usergroup = usergroup
        self.ttl = ttl
        self._members: tuple[float, set[str]] = (0.0, set())
        self._lock = threading.Lock()

    def is_admin(self, client: WebClient, user_id: str) -> bool:
        if user_id in self.admins:
            return True
        if not self.usergroup:
            return False
        with self._lock:
            fetched, members = self._members
            if time.monotonic() - fetched > self.ttl:
                try:
                    members = set(client.usergroups_users_list(usergroup=self.usergroup)["users"])
                except SlackApiError as exc:
                    log.error("cannot read admin user group %s: %s", self.usergroup, exc.response.get("error"))
                self._members = (time.monotonic(), members)
        return user_id in members


def post_reindex_summary(client: WebClient, run) -> None:
    """Tell whoever asked for a re-index how it went."""
    if not run.reply_channel:
        return
    try:
        client.chat_postMessage(
            channel=run.reply_channel, blocks=ui.reindex_summary_blocks(run), text="Re-index finished."
        )
    except SlackApiError as exc:
        log.error("could not post the re-index summary: %s", exc.response.get("error"))


class AdminHandlers:
    def __init__(self, service: MomentService, operations: IndexOperations, permissions: Permissions) -> None:
        self.service = service
        self.operations = operations
        self.permissions = permissions

    def register(self, app) -> None:
        app.command("/moment")(self.on_command)
        app.action(mentor_blocks.APPROVE_DRAFT)(self.on_approve_draft)
        app.action(mentor_blocks.REJECT_DRAFT)(self.on_reject_draft)

    def on_command(self, ack: Ack, command: dict, client: WebClient, respond) -> None:
        """Acknowledge at once; everything else happens after."""
        ack()
        user = command["user_id"]
        text = (command.get("text") or "").strip()
        words = text.split()
        verb = words[0].lower() if words else "help"
        if verb == "help":
            respond(blocks=ui.help_blocks(), text="Moment commands", response_type="ephemeral")
            return
        allowed = self.permissions.is_admin(client, user)
        self._audit(user, f"/moment {verb}", allowed, text[:500])
        if not allowed:
            respond(text=ui.refusal_text(f"/moment {verb}"), response_type="ephemeral")
            return
        try:
            self._dispatch(verb, words[1:], text, command, client, respond)
        except DatabaseUnavailableError:
            respond(text="I can't reach my database just now. Please try again in a minute.", response_type="ephemeral")
        except Exception:
            log.exception("/moment %s failed", verb)
            respond(text=f"`/moment {escape(verb)}` failed; the logs say why.", response_type="ephemeral")

    def _dispatch(self, verb: str, args: list[str], text: str, command: dict, client: WebClient, respond) -> None:
        user = command["user_id"]
        if verb == "reindex":
            _, ahead = self.operations.request(user, command.get("channel_id"))
            wait = f" ({ahead} run{'s' if ahead != 1 else ''} ahead of it)" if ahead else ""
            respond(
                text=f":arrows_counterclockwise: Re-index queued{wait}. I'll post a summary here when it's done.",
                response_type="in_channel",
            )
            self.operations.run_soon(on_done=lambda r: post_reindex_summary(client, r))
        elif verb == "status":
            status = collect_status(self.service, self.operations)
            respond(blocks=ui.status_blocks(status), text="Moment status", response_type="ephemeral")
        elif verb == "report":
            days = int(args[0]) if args and args[0].isdigit() else 7
            days = max(1, min(days, 365))
            report = build_report(self.service.database, days, self.service.retriever.embedder)
            respond(blocks=ui.report_blocks(report), text=f"Moment report, last {days} days", response_type="ephemeral")
        elif verb == "mentors":
            respond(blocks=ui.mentors_blocks(self.service.mentors.stats()), text="Mentors", response_type="ephemeral")
        elif verb == "mentor":
            respond(text=self._mentor(args, text, user, client), response_type="ephemeral")
        elif verb == "drafts":
            drafts = self.service.drafts.pending()
            respond(blocks=mentor_blocks.drafts_blocks(drafts), text="Job-aid drafts", response_type="ephemeral")
        else:
            respond(text=f"I don't know `/moment {escape(verb)}`.", blocks=ui.help_blocks(), response_type="ephemeral")

    def _mentor(self, args: list[str], text: str, by: str, client: WebClient) -> str:
        sub = args[0].lower() if args else ""
        mention = USER_MENTION.search(text)
        if sub not in ("add", "vet", "remove") or mention is None:
            return (
                "Use `/moment mentor add @user topic, topic`, `/moment mentor vet @user` "
                "or `/moment mentor remove @user`."
            )
        user = mention.group(1)
        try:
            if sub == "add":
                topics = text[mention.end() :].split(",")
                mentor = self.service.mentors.add(user, topics, by=by, name=self._name(client, user))
                vetted = "" if mentor.vetted else " Vet them with `/moment mentor vet` before they get questions."
                return f"<@{user}> is a mentor for {escape(', '.join(mentor.topics))}.{vetted}"
            if sub == "vet":
                self.service.mentors.vet(user, by)
                return f":white_check_mark: <@{user}> is vetted and will receive questions on their topics."
            self.service.mentors.remove(user)
            return f"<@{user}> is no longer a mentor. Their open requests stay with them until resolved."
        except MentorError as exc:
            return str(exc)

    @staticmethod
    def _name(client: WebClient, user: str) -> str | None:
        try:
            profile = client.users_info(user=user)["user"].get("profile", {})
            return profile.get("real_name") or profile.get("display_name") or None
        except (SlackApiError, KeyError):
            return None

    def on_approve_draft(self, ack: Ack, body: dict, action: dict, client: WebClient, respond) -> None:
        ack()
        self._decide(body, action, client, respond, approve=True)

    def on_reject_draft(self, ack: Ack, body: dict, action: dict, client: WebClient, respond) -> None:
        ack()
        self._decide(body, action, client, respond, approve=False)

    def _decide(self, body: dict, action: dict, client: WebClient, respond, *, approve: bool) -> None:
        user = body["user"]["id"]
        allowed = self.permissions.is_admin(client, user)
        self._audit(user, "approve draft" if approve else "reject draft", allowed, action.get("value"))
        if not allowed:
            respond(text=ui.refusal_text("draft approval"), response_type="ephemeral", replace_original=False)
            return
        try:
            draft = self.service.drafts.decide(int(action["value"]), user, approve=approve)
        except HandoffError as exc:
            respond(text=str(exc), response_type="ephemeral", replace_original=False)
            return
        if approve:
            self.operations.request(user, (body.get("channel") or {}).get("id"))
            self.operations.run_soon(on_done=lambda r: post_reindex_summary(client, r))
            note = (
                f":white_check_mark: Approved “{escape(draft.title)}”: it is now `{escape(draft.path)}` "
                "and is being indexed."
            )
        else:
            note = f"Rejected “{escape(draft.title)}”."
        respond(text=note, response_type="ephemeral", replace_original=False)
        try:
            channel = client.conversations_open(users=draft.author_id)["channel"]["id"]
            verdict = "approved and added to the content" if approve else "not added to the content this time"
            client.chat_postMessage(
                channel=channel, text=f"Your job-aid draft “{escape(draft.title)}” was {verdict}. Thank you!"
            )
        except SlackApiError as exc:
            log.info("could not tell the draft's author: %s", exc.response.get("error"))

    def _audit(self, user: str, action: str, allowed: bool, detail: str | None) -> None:
        if not allowed:
            log.warning("refused %s for %s", action, user)
        try:
            with self.service.database.session() as session:
                session.add(AuditEvent(user_id=user, action=action, allowed=allowed, detail=detail))
        except DatabaseUnavailableError:
            log.error("audit event not stored (database unavailable): %s %s %s", user, action, allowed)
