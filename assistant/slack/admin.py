"""`/moment …` for admins (and `/moment help` for everyone), drafts approval, and who is an admin.

Admins are the Slack user IDs in MOMENT_ADMINS, plus the members of MOMENT_ADMIN_USERGROUP when set.
Every admin command, allowed or refused, is written to the audit log.
"""

from __future__ import annotations

import logging
import re
import threading
import time

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.db.database import DatabaseUnavailableError
from assistant.helpchannels.helpchannels import ChannelScope, HelpChannelError
from assistant.mentoring.handoff import HandoffError
from assistant.mentoring.mentors import MentorError
from assistant.operations.operations import IndexOperations
from assistant.service import MomentService
from assistant.slack import admin_blocks as ui
from assistant.slack import mentor_blocks
from assistant.slack.formatting import escape, mention
from assistant.slack.outbound import post_reindex_summary
from assistant.slack.workspaces import team_of

log = logging.getLogger(__name__)

USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
CHANNEL_REF = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_OPTION = re.compile(r"\b(types?|tags?|folders?|bots|mentor|threshold|confidence)\s*:\s*", re.IGNORECASE)
_ON = {"on": True, "yes": True, "true": True, "off": False, "no": False, "false": False}


def parse_scope(text: str) -> ChannelScope:
    """`[type: procedure, job-aid] [tag: vpn] [folder: it/] [bots: on] [mentor: off] [threshold: 0.9]`."""
    parts = _OPTION.split(text.replace("[", " ").replace("]", " "))
    scope = ChannelScope()
    if parts[0].strip():
        scope.unknown.append(parts[0].strip()[:60])
    for key, value in zip(parts[1::2], parts[2::2], strict=True):
        key, value = key.lower().rstrip("s"), value.strip()
        items = [v.strip() for v in re.split(r"[,\s]+", value) if v.strip()]
        if key == "type":
            scope.types = [v.lower() for v in items]
        elif key == "tag":
            scope.tags = [v.lower().lstrip("#") for v in items]
        elif key == "folder":
            scope.folders = [v.strip("/") for v in items]
        elif key in ("bot", "mentor"):
            flag = _ON.get(value.lower())
            if flag is None:
                scope.unknown.append(f"{key}: {value[:20]} (use on or off)")
            elif key == "bot":
                scope.answer_bots = flag
            else:
                scope.offer_mentor = flag
        else:  # threshold / confidence
            try:
                scope.min_confidence = float(value)
            except ValueError:
                scope.unknown.append(f"threshold: {value[:20]}")
                scope.min_confidence = None
    return scope


class Permissions:
    """Who is an admin of a workspace: MOMENT_ADMINS (of every workspace), the workspace's own admins (whoever
    installed it), plus a user group's members (cached for five minutes)."""

    def __init__(self, admins: list[str], usergroup: str | None, workspaces=None, ttl: float = 300.0) -> None:
        self.admins = set(admins)
        self.workspaces = workspaces  # assistant.access.tenancy.Workspaces
        self.usergroup = usergroup
        self.ttl = ttl
        self._members: tuple[float, set[str]] = (0.0, set())
        self._lock = threading.Lock()

    def is_admin(self, client: WebClient, user_id: str, team_id: str) -> bool:
        if user_id in self.admins or (self.workspaces is not None and self._named(user_id, team_id)):
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

    def _named(self, user_id: str, team_id: str) -> bool:
        try:
            return self.workspaces.is_named_admin(user_id, team_id, self.admins)
        except DatabaseUnavailableError:
            log.error("workspace admins unknown (database unavailable): only MOMENT_ADMINS are admins now")
            return False


class AdminHandlers:
    def __init__(self, service: MomentService, operations: IndexOperations, permissions: Permissions) -> None:
        self.service = service
        self.operations = operations
        self.permissions = permissions

    def register(self, app) -> None:
        app.command("/moment")(self.on_command)
        app.action(mentor_blocks.APPROVE_DRAFT)(self.on_approve_draft)
        app.action(mentor_blocks.REJECT_DRAFT)(self.on_reject_draft)

    def on_command(self, ack: Ack, command: dict, client: WebClient, respond, context: BoltContext) -> None:
        """Acknowledge at once; everything else happens after. Everything is about the workspace it was
        typed in."""
        ack()
        user = command["user_id"]
        team = team_of(context)
        text = (command.get("text") or "").strip()
        words = text.split()
        verb = words[0].lower() if words else "help"
        if verb == "help":
            respond(blocks=ui.help_blocks(), text="Moment commands", response_type="ephemeral")
            return
        allowed = self.permissions.is_admin(client, user, team)
        self._audit(user, f"/moment {verb}", allowed, text[:500], team)
        if not allowed:
            respond(text=ui.refusal_text(f"/moment {verb}"), response_type="ephemeral")
            return
        try:
            self._dispatch(verb, words[1:], text, command, client, respond, team)
        except DatabaseUnavailableError:
            respond(text="I can't reach my database just now. Please try again in a minute.", response_type="ephemeral")
        except Exception:
            log.exception("/moment %s failed", verb)
            respond(text=f"`/moment {escape(verb)}` failed; the logs say why.", response_type="ephemeral")

    def _dispatch(
        self, verb: str, args: list[str], text: str, command: dict, client: WebClient, respond, team: str
    ) -> None:
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
            status = self.service.operations.status(team)
            respond(blocks=ui.status_blocks(status), text="Moment status", response_type="ephemeral")
        elif verb == "report":
            days = int(args[0]) if args and args[0].isdigit() else 7
            days = max(1, min(days, 365))
            report = self.service.operations.report(days, team_id=team)
            respond(blocks=ui.report_blocks(report), text=f"Moment report, last {days} days", response_type="ephemeral")
        elif verb == "gaps":
            respond(text=self._gaps(args, text, user, client, team), response_type="ephemeral")
        elif verb == "mentors":
            stats = self.service.mentors.stats(team)
            respond(blocks=ui.mentors_blocks(stats), text="Mentors", response_type="ephemeral")
        elif verb == "mentor":
            respond(text=self._mentor(args, text, user, client, team), response_type="ephemeral")
        elif verb == "channel":
            respond(text=self._channel(args, text, user, client, team), response_type="ephemeral")
        elif verb == "admin":
            respond(text=self._admin(args, text, team), response_type="ephemeral")
        elif verb == "generated":
            respond(text=self._generated(args, team), response_type="ephemeral")
        elif verb == "source":
            self._source(args, text, user, client, team, respond)
        elif verb == "drafts":
            drafts = self.service.drafts.pending(team)
            respond(blocks=mentor_blocks.drafts_blocks(drafts), text="Job-aid drafts", response_type="ephemeral")
        else:
            respond(text=f"I don't know `/moment {escape(verb)}`.", blocks=ui.help_blocks(), response_type="ephemeral")

    def _source(self, args: list[str], text: str, by: str, client: WebClient, team: str, respond) -> None:
        """`/moment source …` (assistant/slack/admin_sources.py)."""
        from assistant.slack.admin_sources import source_command
        from assistant.sources import Sources
        from assistant.sources.people import PeopleDirectory

        people = PeopleDirectory(self.operations.database, client, team)
        source_command(Sources(self.operations, people), ["source", *args], text, by, team, respond)

    def _gaps(self, args: list[str], text: str, by: str, client: WebClient, team: str) -> str:
        """`/moment gaps`, `gaps show ID`, `gaps assign ID @user` (who is told by DM), `gaps close ID [why]`,
        `gaps reopen ID` (assistant/insights/gaps.py)."""
        from assistant.insights import GapError
        from assistant.slack.outbound import tell_gap_owner

        sub = args[0].lower() if args else ""
        if not sub:
            return ui.gaps_text(self.service.gaps.list(team))
        gaps, gap_id = self.service.gaps, args[1] if len(args) > 1 else ""
        named = USER_MENTION.search(text)
        try:
            if sub == "show":
                return ui.gap_text(gaps.detail(team, gap_id))
            if sub == "assign" and named is not None:
                detail = gaps.assign(team, gap_id, named.group(1), by)
                done = f"Gap {detail.gap.id} is assigned to <@{detail.gap.owner_id}>"
                try:
                    tell_gap_owner(client, detail, by)
                except SlackApiError as exc:
                    return f"{done}, who was not told: {exc.response.get('error')}."
                return f"{done}; I've sent them its questions."
            if sub == "close":
                note = " ".join(args[2:]) or None
                return f"Gap {gaps.close(team, gap_id, by, note).gap.id} is closed."
            if sub == "reopen":
                reopened = gaps.reopen(team, gap_id, by).gap
                return f"Gap {reopened.id} is {reopened.status} again."
        except GapError as exc:
            return escape(str(exc))
        return (
            "Use `/moment gaps`, `/moment gaps show ID`, `/moment gaps assign ID @user`, "
            "`/moment gaps close ID [why]` or `/moment gaps reopen ID`."
        )

    def _mentor(self, args: list[str], text: str, by: str, client: WebClient, team: str) -> str:
        sub = args[0].lower() if args else ""
        named = USER_MENTION.search(text)
        if sub not in ("add", "vet", "remove") or named is None:
            return (
                "Use `/moment mentor add @user topic, topic`, `/moment mentor vet @user` "
                "or `/moment mentor remove @user`."
            )
        user = named.group(1)
        try:
            if sub == "add":
                topics = text[named.end() :].split(",")
                mentor = self.service.mentors.add(team, user, topics, by=by, name=self._name(client, user))
                vetted = "" if mentor.vetted else " Vet them with `/moment mentor vet` before they get questions."
                return f"<@{user}> is a mentor for {escape(', '.join(mentor.topics))}.{vetted}"
            if sub == "vet":
                self.service.mentors.vet(team, user, by)
                return f":white_check_mark: <@{user}> is vetted and will receive questions on their topics."
            self.service.mentors.remove(team, user)
            return f"<@{user}> is no longer a mentor. Their open requests stay with them until resolved."
        except MentorError as exc:
            return exc.render(mention)

    def _admin(self, args: list[str], text: str, team: str) -> str:
        """`/moment admin add @user`, `remove @user`, `list`: the workspace's own admins."""
        sub = args[0].lower() if args else ""
        workspaces = self.service.workspaces
        if sub == "list":
            own = sorted(workspaces.admins(team))
            everywhere = sorted(self.permissions.admins)
            lines = [f"This workspace's admins: {', '.join(f'<@{a}>' for a in own) or 'none'}."]
            if everywhere:
                lines.append(f"Admins of every workspace (MOMENT_ADMINS): {', '.join(f'<@{a}>' for a in everywhere)}.")
            return "\n".join(lines)
        named = USER_MENTION.search(text)
        if sub not in ("add", "remove") or named is None:
            return "Use `/moment admin add @user`, `/moment admin remove @user` or `/moment admin list`."
        user = named.group(1)
        if sub == "add":
            changed = workspaces.set_admin(team, user, True)
            return f"<@{user}> {'is now' if changed else 'is already'} a Moment admin of this workspace."
        if user in self.permissions.admins:
            return f"<@{user}> is in MOMENT_ADMINS (an admin of every workspace): the operator can change that."
        changed = workspaces.set_admin(team, user, False)
        return f"<@{user}> {'is no longer' if changed else 'was not'} a Moment admin of this workspace."

    def _generated(self, args: list[str], team: str) -> str:
        """`/moment generated on|off`: generated answers in this workspace (where MOMENT_LLM_URL is set)."""
        state = args[0].lower() if args else ""
        workspaces = self.service.workspaces
        if state not in ("on", "off"):
            now = "on" if workspaces.generated_answers(team) else "off"
            return f"Generated answers are {now} in this workspace. Use `/moment generated on` or `off`."
        changed = workspaces.set_generated_answers(team, state == "on")
        reply = f"Generated answers are {'now' if changed else 'already'} {state} in this workspace."
        if self.service.asking.generator is None:
            reply += " (No LLM is configured, so none are generated until the operator sets MOMENT_LLM_URL.)"
        return reply

    def _channel(self, args: list[str], text: str, by: str, client: WebClient, team: str) -> str:
        """`/moment channel add #c [scope]`, `list`, `remove #c`."""
        sub = args[0].lower() if args else ""
        channels = self.service.help_channels.of(team)
        if sub == "list":
            return ui.help_channels_text(channels.all(), channels.default_min_confidence)
        ref = CHANNEL_REF.search(text)
        if sub not in ("add", "remove") or ref is None:
            return (
                "Use `/moment channel add #channel [type: procedure, job-aid] [tag: vpn] [folder: it] "
                "[bots: off] [mentor: on] [threshold: 0.85]`, `/moment channel list` "
                "or `/moment channel remove #channel`."
            )
        channel_id, name = ref.group(1), ref.group(2)
        if sub == "remove":
            if channels.remove(channel_id):
                return f"I'll no longer answer unasked questions in <#{channel_id}>. (@mentions still work there.)"
            return f"<#{channel_id}> isn't a help channel."
        try:
            channel, created = channels.configure(channel_id, name, parse_scope(text[ref.end() :]), by)
        except HelpChannelError as exc:
            return escape(str(exc))
        done = "is now a help channel" if created else "settings updated"
        settings = ui.scope_text(channel, channels.min_confidence(channel))
        reply = f":white_check_mark: <#{channel_id}> {done}: {settings}."
        if not self._is_member(client, channel_id):
            reply += (
                f"\n:warning: I'm not a member of <#{channel_id}> yet, so I can't read it: "
                "type `/invite @Moment` there."
            )
        return reply

    @staticmethod
    def _is_member(client: WebClient, channel_id: str) -> bool:
        try:
            return bool(client.conversations_info(channel=channel_id)["channel"].get("is_member"))
        except (SlackApiError, KeyError) as exc:
            log.info("cannot tell whether Moment is in %s: %r", channel_id, exc)
            return False

    @staticmethod
    def _name(client: WebClient, user: str) -> str | None:
        try:
            profile = client.users_info(user=user)["user"].get("profile", {})
            return profile.get("real_name") or profile.get("display_name") or None
        except (SlackApiError, KeyError):
            return None

    def on_approve_draft(self, ack: Ack, body: dict, action: dict, client: WebClient, respond, context: BoltContext):
        ack()
        self._decide(body, action, client, respond, team_of(context), approve=True)

    def on_reject_draft(self, ack: Ack, body: dict, action: dict, client: WebClient, respond, context: BoltContext):
        ack()
        self._decide(body, action, client, respond, team_of(context), approve=False)

    def _decide(self, body: dict, action: dict, client: WebClient, respond, team: str, *, approve: bool) -> None:
        user = body["user"]["id"]
        allowed = self.permissions.is_admin(client, user, team)
        self._audit(user, "approve draft" if approve else "reject draft", allowed, action.get("value"), team)
        if not allowed:
            respond(text=ui.refusal_text("draft approval"), response_type="ephemeral", replace_original=False)
            return
        try:
            draft = self.service.drafts.decide(team, int(action["value"]), user, approve=approve)
        except HandoffError as exc:
            respond(text=str(exc), response_type="ephemeral", replace_original=False)
            return
        if approve:
            self.operations.request(user, (body.get("channel") or {}).get("id"))
            self.operations.run_soon(on_done=lambda r: post_reindex_summary(client, r))
            from assistant.slack.mentoring import MentorHandlers

            MentorHandlers(self.service, self.permissions.is_admin).job_aid_approved(client, draft, team)
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

    def _audit(self, user: str, action: str, allowed: bool, detail: str | None, team: str) -> None:
        if not allowed:
            log.warning("refused %s for %s", action, user)
        try:
            self.service.audit.record(user, action, allowed, detail, team_id=team)
        except DatabaseUnavailableError:
            log.error("audit event not stored (database unavailable): %s %s %s", user, action, allowed)
