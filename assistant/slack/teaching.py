"""Teaching Moment from Slack: *This answered it* and *Pick the right section* (verified answers).

A mentor who helped with a question (the request's mentor) and an admin see the two buttons: on the mentor's
"Resolved" message, and under an answer an admin was given. *This answered it* teaches the question with the
section of the passage shown; *Pick the right section* opens a modal with a static select of that page's
sections. Who clicks is checked on every click and again on the modal's submission (a forged payload for
someone else's question is refused and audited); the teaching itself is `Asking.teach` (audited).
"""

from __future__ import annotations

import json
import logging

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.answering.verified import VerifyError
from assistant.slack.formatting import escape, truncate
from assistant.slack.teach_blocks import (
    REFUSED,
    SECTION_BLOCK,
    SECTION_SELECT,
    TEACH_MODAL,
    TEACH_PICK,
    TEACH_SHOWN,
    pick_modal,
)
from assistant.slack.workspaces import team_of

log = logging.getLogger(__name__)


class TeachHandlers:
    """The listeners of the two buttons and the modal."""

    def __init__(self, service, is_admin) -> None:
        self.service = service
        self.is_admin = is_admin  # callable(client, user_id, team_id) -> bool

    def register(self, app) -> None:
        app.action(TEACH_SHOWN)(self.on_this_answered)
        app.action(TEACH_PICK)(self.on_pick)
        app.view(TEACH_MODAL)(self.on_picked)

    def may_teach(self, client: WebClient, user: str, team: str, interaction_id: int) -> bool:
        return user in self.service.mentoring.mentors_of_interaction(interaction_id, team) or self.is_admin(
            client, user, team
        )

    def _refuse(self, client, body, user: str, team: str, interaction_id) -> None:
        self.service.audit.record(
            user, "verify", False, f"interaction #{interaction_id}: not its mentor or an admin", team_id=team
        )
        self._tell(client, body, user, REFUSED)

    def _answer_to_teach(self, body: dict, action: dict, client: WebClient, context: BoltContext, no_page: str):
        """The clicker, workspace, interaction id and answer a teaching button is about; None (the clicker told
        why) when they may not teach it or it showed no page."""
        user, team = body["user"]["id"], team_of(context)
        interaction_id = _int(action.get("value"))
        if interaction_id is None or not self.may_teach(client, user, team, interaction_id):
            self._refuse(client, body, user, team, interaction_id)
            return None
        answer = self.service.records.answer_for(interaction_id, team)
        if answer is None or not answer.sources:
            self._tell(client, body, user, no_page)
            return None
        return user, team, interaction_id, answer

    def on_this_answered(self, ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        ack()
        found = self._answer_to_teach(
            body, action, client, context, "That answer showed no passage to teach; use Pick the right section."
        )
        if found is None:
            return
        user, team, interaction_id, answer = found
        shown = answer.sources[0]
        self._teach(client, body, user, team, answer.question, shown.path, shown.heading_path, interaction_id)

    def on_pick(self, ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        ack()
        found = self._answer_to_teach(body, action, client, context, "I can't find a page for that answer any more.")
        if found is None:
            return
        user, _team, interaction_id, answer = found
        page = answer.sources[0]
        sections = self.service.asking.sections_of(page.path)
        if not sections:
            self._tell(client, body, user, f"{page.title} is no longer in the content.")
            return
        client.views_open(
            trigger_id=body["trigger_id"],
            view=pick_modal(interaction_id, answer.question, page.path, page.title, sections),
        )

    def on_picked(self, ack: Ack, body: dict, view: dict, client: WebClient, context: BoltContext) -> None:
        user, team = body["user"]["id"], team_of(context)
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            interaction_id, path = int(meta["interaction_id"]), str(meta["path"])
            chosen = view["state"]["values"][SECTION_BLOCK][SECTION_SELECT]["selected_option"]["value"]
            sections = self.service.asking.sections_of(path)
            heading_path = sections[int(chosen)]
        except (ValueError, KeyError, TypeError, IndexError):
            ack(response_action="errors", errors={SECTION_BLOCK: "Choose one of the page's sections."})
            return
        if not self.may_teach(client, user, team, interaction_id):  # checked again: a submission can be forged
            ack(response_action="errors", errors={SECTION_BLOCK: REFUSED})
            refused = f"interaction #{interaction_id}: not its mentor or an admin"
            self.service.audit.record(user, "verify", False, refused, team_id=team)
            return
        answer = self.service.records.answer_for(interaction_id, team)
        if answer is None:
            ack(response_action="errors", errors={SECTION_BLOCK: "I can't find that question any more."})
            return
        ack()
        self._teach(client, None, user, team, answer.question, path, heading_path, interaction_id)

    def _teach(self, client, body, user, team, question, path, heading_path, interaction_id) -> None:
        try:
            pair = self.service.asking.teach(
                question, path, " > ".join(heading_path), user, team_id=team, interaction_id=interaction_id
            )
        except VerifyError as exc:
            self._tell(client, body, user, str(exc))
            return
        where = " › ".join([pair.path, *pair.heading_path])
        self._tell(
            client,
            body,
            user,
            f"Thanks: “{truncate(pair.question, 200)}” and questions like it are now answered from {where}, "
            "marked as verified by you.",
        )

    @staticmethod
    def _tell(client: WebClient, body: dict | None, user: str, text: str) -> None:
        """Only to `user`: in the channel of the click when there is one, else in their DM with Moment."""
        channel = ((body or {}).get("channel") or {}).get("id")
        try:
            if channel:
                client.chat_postEphemeral(channel=channel, user=user, text=escape(text))
            else:
                dm = client.conversations_open(users=user)["channel"]["id"]
                client.chat_postMessage(channel=dm, text=escape(text))
        except SlackApiError as exc:
            log.info("could not tell %s about teaching: %s", user, exc.response.get("error"))


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
