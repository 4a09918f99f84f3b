"""Listeners for mentor hand-offs: Ask a mentor, Accept / Decline, Cancel, Resolve, drafts, pause."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.db.database import DatabaseUnavailableError
from assistant.mentoring.handoff import HandoffError
from assistant.mentoring.mentors import MentorError
from assistant.mentoring.views import RequestView
from assistant.records.intake import DEADLINE as INTAKE_DEADLINE
from assistant.service import MomentService
from assistant.slack import blocks as answer_ui
from assistant.slack import mentor_blocks as ui
from assistant.slack.formatting import escape, escaped, link, mention
from assistant.slack.outbound import handoff_for, publish_home
from assistant.slack.posting import post_message
from assistant.slack.workspaces import team_of

log = logging.getLogger(__name__)

UNAVAILABLE = "I can't reach my database just now, so nothing changed. Please try again in a minute."
LATER = (
    ":hourglass_flowing_sand: Noted: I can't reach my database just now; I'll find you a mentor as soon as I can,"
    " and tell you who."
)


class MentorHandlers:
    def __init__(self, service: MomentService, is_admin) -> None:
        self.service = service
        self.is_admin = is_admin  # callable(client, user_id) -> bool
        self._clicks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="moment-mentor-click")

    def handoff(self, client: WebClient, team: str):
        return handoff_for(self.service, client, team)

    def register(self, app) -> None:
        app.action(ui.ACCEPT)(self.on_accept)
        app.action(ui.DECLINE)(self.on_decline)
        app.action(ui.CANCEL)(self.on_cancel)
        app.action(ui.RESOLVE)(self.on_resolve)
        app.action(ui.RESOLVE_IN_THREAD)(self.on_resolve_in_thread)
        app.action(ui.SAVE_DRAFT)(self.on_save_draft)
        app.view(ui.DRAFT_MODAL)(self.on_draft_submitted)
        app.action(ui.PAUSE)(self.on_pause)
        app.action(ui.RESUME)(self.on_resume)

    # -- the asker -------------------------------------------------------------------------------

    def ask_mentor(self, ack: Ack, client: WebClient, body: dict, context, interaction_id: int, user: str, tell):
        """*Ask a mentor* on an answer (one of the workspace's mentors). The request is recorded before the
        click is acknowledged (within `intake.DEADLINE`), or else the click is kept on the host
        (`Mentoring.spool_click`): its request is opened when the database is back and offered by the worker.
        `tell(text, blocks=None)`: a note to the person."""
        recorded, settled = threading.Event(), threading.Event()  # the request recorded; that, or the work done

        def on_recorded() -> None:
            recorded.set()
            settled.set()

        work = self._clicks.submit(self._request, client, context, interaction_id, user, tell, on_recorded)
        work.add_done_callback(lambda _: settled.set())
        settled.wait(INTAKE_DEADLINE)
        keep = not recorded.is_set() and (not work.done() or isinstance(work.exception(), DatabaseUnavailableError))
        note = None
        if keep:
            try:
                self.service.mentoring.spool_click(interaction_id, user, team_of(context), context.enterprise_id)
                note = LATER
            except OSError as exc:
                log.error("mentor request not kept (%s): give this user write access to MOMENT_HOME", exc)
                note = UNAVAILABLE
        ack()
        if note is not None:
            tell(note)
        with contextlib.suppress(DatabaseUnavailableError):  # nothing recorded: kept on the host, and told
            work.result()

    def _request(self, client: WebClient, context, interaction_id: int, user: str, tell, on_recorded) -> None:
        """Open the request and offer it (`on_recorded()` in between). Raises `DatabaseUnavailableError` when
        nothing was recorded."""
        team = team_of(context)
        recorded: list[bool] = []
        asked = self.service.records.interaction(interaction_id, team)
        if asked is not None and asked.user_id != user:
            # A bystander on someone else's answer: the hand-off is the asker's to start. They can join it.
            tell(
                f"Only <@{asked.user_id}>, who asked, can ask a mentor for this question. "
                "If you have the same question, say so: you'll hear when it's answered.",
                blocks=answer_ui.same_question_blocks(asked.user_id, interaction_id),
            )
            return
        answer = self.service.records.answer_for(interaction_id, team)
        if answer is None:
            tell("I can't find that question any more. Ask it again and I'll find you a mentor.")
            return
        try:
            self.handoff(client, team).request(
                asker_id=user,
                question=answer.question,
                interaction_id=interaction_id,
                team_id=team,
                enterprise_id=context.enterprise_id,
                channel_id=asked.channel_id if asked else None,
                thread_ts=asked.thread_ts if asked else None,
                on_recorded=lambda: (recorded.append(True), on_recorded()),
            )
        except HandoffError as exc:
            tell(str(exc))
        except DatabaseUnavailableError:
            if not recorded:
                raise
            tell(UNAVAILABLE)

    def on_cancel(self, ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        ack()
        self._run(client, body, context, lambda h, user: h.cancel(int(action["value"]), user))

    # -- the mentor ------------------------------------------------------------------------------

    def on_accept(self, ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        ack()
        user = body["user"]["id"]

        def accept(h, user):
            team = team_of(context)
            mentor = self.service.mentors.get(team, user)
            may_take = self.is_admin(client, user, team) or bool(mentor and mentor.vetted and mentor.active)
            request = h.accept(int(action["value"]), user, may_take_escalated=may_take)
            self._replace(client, body, f":white_check_mark: <@{user}> took this one.")
            self._note_in_thread(client, h, request)
            self._tell_followers(client, request, f"<@{user}>, a peer mentor, is now helping with")

        self._run(client, body, context, accept, user=user)

    def on_decline(self, ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        ack()

        def decline(h, user):
            h.decline(int(action["value"]), user)
            self._replace(client, body, "You declined this one; I've offered it to someone else. Thanks for saying so!")

        self._run(client, body, context, decline)

    def on_resolve(self, ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        ack()

        def resolve(h, user):
            self._resolved(client, h.resolve(int(action["value"]), user))

        self._run(client, body, context, resolve)

    def on_resolve_in_thread(self, ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        """ "Mark resolved" on the note in the asker's thread: the asker (or the mentor) may."""
        ack()
        request_id = int(action["value"])

        def resolve(h, user):
            request = h.get(request_id)
            if request is not None and request.owner_id == user:
                request = h.resolve(request_id, user)
            else:
                request = h.resolve_by_asker(request_id, user)
                self._dm_blocks(client, request.owner_id, ui.resolved_blocks(request), "Resolved, thank you!")
            self._resolved(client, request)

        self._run(client, body, context, resolve)

    # -- the asker's thread ----------------------------------------------------------------------

    def _note_in_thread(self, client: WebClient, h, request: RequestView) -> None:
        """Say in the thread where the question was asked who is helping (channels and DM threads)."""
        if not (request.channel_id and request.thread_ts):
            return
        try:
            posted = post_message(
                client,
                channel=request.channel_id,
                thread_ts=request.thread_ts,
                blocks=ui.helping_note_blocks(request),
                text=f"<@{request.owner_id}> is helping <@{request.asker_id}> with this.",
            )
            h.set_thread_note(request.id, posted["ts"])
        except (SlackApiError, DatabaseUnavailableError) as exc:
            log.info("could not note the hand-off in the thread of request %s: %r", request.id, exc)

    def _resolved(self, client: WebClient, request: RequestView, job_aid: str | None = None) -> None:
        """The thread says it is resolved (the note is replaced, or a new one posted), and followers hear."""
        if request.channel_id and request.thread_ts:
            blocks = ui.resolved_note_blocks(request, job_aid)
            text = "Resolved."
            try:
                if request.thread_note_ts:
                    client.chat_update(channel=request.channel_id, ts=request.thread_note_ts, blocks=blocks, text=text)
                elif job_aid is None:
                    post_message(
                        client, channel=request.channel_id, thread_ts=request.thread_ts, blocks=blocks, text=text
                    )
            except SlackApiError as exc:
                log.info("could not mark request %s resolved in its thread: %s", request.id, exc.response.get("error"))
        if job_aid is None:
            self._tell_followers(client, request, "Resolved:")

    def job_aid_approved(self, client: WebClient, draft, team: str) -> None:
        """A draft from a resolved request is now content: its thread's note links to it."""
        request = self.service.mentoring.handoff(None, team).get(draft.request_id) if draft.request_id else None
        if request is None or request.status != "resolved" or not request.thread_note_ts:
            return
        base = self.service.settings.content_base_url
        url = f"{base.rstrip('/')}/{draft.path}" if base else None
        self._resolved(client, request, job_aid=f"now a job aid: {link(url, draft.title)}")

    def _tell_followers(self, client: WebClient, request: RequestView, lead: str) -> None:
        where = f" in <#{request.channel_id}>" if (request.channel_id or "")[:1] in ("C", "G") else ""
        for user in self.service.records.followers(request.interaction_id):
            self._dm(client, user, f"{lead} the question you also had{where}: _{escaped(request.question, 200)}_")

    def _dm_blocks(self, client: WebClient, user: str, blocks, text: str) -> None:
        try:
            channel = client.conversations_open(users=user)["channel"]["id"]
            client.chat_postMessage(channel=channel, blocks=blocks, text=text)
        except SlackApiError as exc:
            log.info("could not DM %s: %s", user, exc.response.get("error"))

    def on_save_draft(self, ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        ack()
        user = body["user"]["id"]
        request = self.service.mentoring.handoff(None, team_of(context)).get(int(action["value"]))
        if request is None or request.owner_id != user:
            self._tell(client, body, user, "Only the mentor who took this request can save its answer as a draft.")
            return
        client.views_open(trigger_id=body["trigger_id"], view=ui.draft_modal(request))

    def on_draft_submitted(self, ack: Ack, body: dict, view: dict, client: WebClient, context: BoltContext) -> None:
        values = view["state"]["values"]
        title = (values.get(ui.DRAFT_TITLE, {}).get(ui.DRAFT_TITLE, {}).get("value") or "").strip()
        text = (values.get(ui.DRAFT_BODY, {}).get(ui.DRAFT_BODY, {}).get("value") or "").strip()
        errors = {}
        if len(title) < 5:
            errors[ui.DRAFT_TITLE] = "Give the draft a title someone would search for."
        if len(text) < 20:
            errors[ui.DRAFT_BODY] = "Write the answer (a few steps is fine)."
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()
        user = body["user"]["id"]
        request_id = json.loads(view.get("private_metadata") or "{}").get("request_id")
        try:
            draft = self.service.drafts.save(
                team_of(context), author_id=user, title=title, body=text, request_id=request_id
            )
        except (HandoffError, DatabaseUnavailableError) as exc:
            self._dm(client, user, f"Your draft wasn't saved: {escape(str(exc))}")
            return
        self._dm(client, user, f":memo: Saved your draft “{escape(draft.title)}”. L&D will review it; thank you!")
        if request_id is not None:
            request = self.service.mentoring.handoff(None, team_of(context)).get(int(request_id))
            if request is not None and request.status == "resolved":
                self._resolved(client, request, job_aid=f"being written up as a job aid, “{escape(draft.title)}”")
        if self.service.settings.admin_channel:
            try:
                client.chat_postMessage(
                    channel=self.service.settings.admin_channel,
                    text=f":memo: <@{user}> saved a job-aid draft from a mentor request. Review: `/moment drafts`.",
                )
            except SlackApiError as exc:
                log.info("could not tell admins about draft %s: %s", draft.id, exc.response.get("error"))

    def on_pause(self, ack: Ack, body: dict, client: WebClient, context: BoltContext) -> None:
        ack()
        self._set_paused(client, body, context, True)

    def on_resume(self, ack: Ack, body: dict, client: WebClient, context: BoltContext) -> None:
        ack()
        self._set_paused(client, body, context, False)

    def _set_paused(self, client: WebClient, body: dict, context, paused: bool) -> None:
        user, team = body["user"]["id"], team_of(context)
        try:
            self.service.mentors.set_paused(team, user, paused)
        except MentorError as exc:
            self._tell(client, body, user, exc.render(mention))
            return
        publish_home(
            self.service, client, user, team, self.is_admin(client, user, team)
        )  # the App Home shows the new state

    # -- plumbing --------------------------------------------------------------------------------

    def _run(self, client: WebClient, body: dict, context, step, *, user: str | None = None) -> None:
        user = user or body["user"]["id"]
        try:
            step(self.handoff(client, team_of(context)), user)
        except HandoffError as exc:
            self._tell(client, body, user, str(exc))
        except DatabaseUnavailableError:
            self._tell(client, body, user, UNAVAILABLE)

    def _replace(self, client: WebClient, body: dict, text: str) -> None:
        """Replace the buttons of the message that was clicked, so nobody clicks twice."""
        channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
        ts = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts")
        if body.get("view") or not (channel and ts):
            return  # App Home: republished instead
        try:
            client.chat_update(channel=channel, ts=ts, text=text, blocks=[])
        except SlackApiError as exc:
            log.info("could not update message: %s", exc.response.get("error"))

    def _tell(self, client: WebClient, body: dict, user: str, text: str) -> None:
        channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
        try:
            if channel:
                client.chat_postEphemeral(channel=channel, user=user, text=text)
            else:
                self._dm(client, user, text)
        except SlackApiError:
            self._dm(client, user, text)

    @staticmethod
    def _dm(client: WebClient, user: str, text: str) -> None:
        try:
            channel = client.conversations_open(users=user)["channel"]["id"]
            client.chat_postMessage(channel=channel, text=text)
        except SlackApiError as exc:
            log.info("could not DM %s: %s", user, exc.response.get("error"))
