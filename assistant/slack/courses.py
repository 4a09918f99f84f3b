"""The *Not now* button of a course suggestion (`assistant.learning`): recorded, and the line taken out."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.db.database import DatabaseUnavailableError
from assistant.service import MomentService
from assistant.slack.course_blocks import COURSE_BLOCK, COURSE_NOT_NOW, dismissed_note
from assistant.slack.workspaces import team_of

log = logging.getLogger(__name__)


class CourseHandlers:
    """Listeners of course suggestions."""

    def __init__(self, service: MomentService) -> None:
        self.service = service

    def register(self, app: App) -> None:
        app.action(COURSE_NOT_NOW)(self.on_not_now)

    def on_not_now(self, ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        """Only the person it was suggested to can dismiss it; the message then says so in its place."""
        ack()
        user = body["user"]["id"]
        try:
            dismissed = self.service.courses.dismiss(int(action.get("value", "")), user, team_of(context))
        except ValueError:
            return  # not a suggestion's id: nothing to do
        except DatabaseUnavailableError as exc:
            log.warning("Not now on a course not recorded: %s", exc)
            return
        message = body.get("message")
        channel = (body.get("channel") or {}).get("id")
        if not dismissed or not message or not channel:
            return
        blocks = [b if b.get("block_id") != COURSE_BLOCK else dismissed_note().to_dict() for b in message["blocks"]]
        try:
            client.chat_update(channel=channel, ts=message["ts"], blocks=blocks, text=message.get("text") or "")
        except SlackApiError as exc:
            log.info("could not take the course suggestion out of the answer: %s", exc.response.get("error"))
