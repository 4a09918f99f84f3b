"""Tells people about mentor requests in Slack (the `Notifier` of `assistant.handoff`).

Every method logs and swallows Slack errors: a hand-off already committed in the database must not be
undone because one message could not be posted.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.db.database import Database
from assistant.db.models import Interaction, Mentor, MentorOffer, MentorRequest
from assistant.notices import Notice
from assistant.slack import mentor_blocks as ui
from assistant.slack.formatting import escaped, mention
from assistant.slack.posting import post_message

log = logging.getLogger(__name__)


class SlackNotifier:
    def __init__(
        self,
        client: WebClient,
        database: Database,
        *,
        escalation_channel: str | None,
        offer_minutes: float,
        visible=None,
    ):
        self.client = client
        # visible(sources, user_ids, team_id): the sources all of them may see (MomentService.visible_sources)
        self.visible = visible
        self.database = database
        self.escalation_channel = escalation_channel
        self.offer_minutes = int(offer_minutes)

    def _post(self, **kwargs):
        """chat.postMessage, once (retried after a 5xx only when Slack did not post it)."""
        return post_message(self.client, **kwargs)

    def offer(self, request: MentorRequest, offer: MentorOffer, mentor: Mentor) -> tuple[str | None, str | None]:
        blocks = ui.offer_blocks(request, offer, self._shown(request, mentor.slack_id), self.offer_minutes)
        text = f"Can you help with a question? {escaped(request.question, 150)}"
        response = self._dm(mentor.slack_id, blocks, text)
        return (response["channel"], response["ts"]) if response else (None, None)

    def offer_closed(self, offer: MentorOffer, request: MentorRequest, why: str) -> None:
        if not (offer.channel_id and offer.message_ts):
            with self.database.session() as session:
                fresh = session.get(MentorOffer, offer.id)
                if fresh is None or not fresh.message_ts:
                    return
                offer = fresh
        self._call(
            "chat.update",
            self.client.chat_update,
            channel=offer.channel_id,
            ts=offer.message_ts,
            blocks=ui.closed_offer_blocks(request, why),
            text=why,
        )

    def tell_asker(self, request: MentorRequest, notice: Notice, *, cancellable: bool = False) -> None:
        text = notice.render(mention)
        self._dm(request.asker_id, ui.notice_blocks(request, text, cancellable=cancellable), text)

    def tell_mentor(self, mentor_id: str, notice: Notice, request: MentorRequest) -> None:
        text = notice.render(mention)
        self._dm(mentor_id, ui.notice_blocks(request, text, label="The question"), text)

    def connect(self, request: MentorRequest) -> str | None:
        opened = self._call(
            "conversations.open", self.client.conversations_open, users=f"{request.asker_id},{request.owner_id}"
        )
        if not opened:
            return None
        channel = opened["channel"]["id"]
        with self.database.session() as session:
            mentor = session.get(Mentor, (request.team_id, request.owner_id))
        name = mentor.name if mentor else request.owner_id
        self._call(
            "chat.postMessage",
            self._post,
            channel=channel,
            blocks=ui.conversation_blocks(request, name, self._shown(request, request.owner_id)),
            text=f"{name} is here to help with your question.",
        )
        return channel

    def escalate(self, request: MentorRequest, why: str) -> None:
        if not self.escalation_channel:
            log.warning("request %s needs a person but MOMENT_ESCALATION_CHANNEL is not set", request.id)
            return
        with self.database.session() as session:
            tried = [o.mentor_id for o in session.get(MentorRequest, request.id).offers]
        self._call(
            "chat.postMessage",
            self._post,
            channel=self.escalation_channel,
            blocks=ui.escalation_blocks(request, why, tried),
            text=f"A question needs a person: {escaped(request.question, 150)}",
        )

    def resolved(self, request: MentorRequest) -> None:
        self.tell_asker(
            request, Notice("{mentor} marked your question resolved. Glad it's sorted!", {"mentor": request.owner_id})
        )
        self._dm(request.owner_id, ui.resolved_blocks(request), "Resolved, thank you!")

    # -- plumbing --------------------------------------------------------------------------------

    def _shown(self, request: MentorRequest, mentor_id: str | None) -> list[dict]:
        """What Moment showed the asker, as far as both the asker and the mentor may see it now (an item for
        some user groups only is left out unless both are in one of them)."""
        if request.interaction_id is None:
            return []
        with self.database.session() as session:
            interaction = session.get(Interaction, request.interaction_id)
            answer = (interaction.answer or {}) if interaction else {}
        sources = list(answer.get("sources", []))
        if self.visible is not None:
            sources = self.visible(sources, [request.asker_id, mentor_id or request.asker_id], request.team_id)
        elif any(s.get("audience") for s in sources):
            sources = [s for s in sources if not s.get("audience")]  # nobody to ask: fail closed
        if not answer.get("answered"):
            # The asker saw only titles ("possibly related"): so does the mentor, as what Moment showed.
            sources = [{k: v for k, v in s.items() if k != "snippet"} for s in sources]
        return sources

    def _dm(self, user_id: str, blocks, text: str):
        opened = self._call("conversations.open", self.client.conversations_open, users=user_id)
        if not opened:
            return None
        kwargs = {"blocks": blocks} if blocks else {}
        return self._call("chat.postMessage", self._post, channel=opened["channel"]["id"], text=text, **kwargs)

    @staticmethod
    def _call(name: str, method, **kwargs):
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            log.error("%s failed: %s", name, exc.response.get("error"))
        except Exception as exc:  # connection errors after the client's own retries
            log.error("%s failed: %r", name, exc)
        return None
