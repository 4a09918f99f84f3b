"""Tells people about mentor requests in Slack (the `Notifier` of `assistant.mentoring.handoff`).

It reads nothing but the views the hand-off gives it (no database: what a mentor may see was decided in
the core). Every method logs and swallows Slack errors: a hand-off already committed in the database must
not be undone because one message could not be posted.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.mentoring.notices import Notice
from assistant.mentoring.views import OfferView, RequestView
from assistant.slack import mentor_blocks as ui
from assistant.slack.formatting import escaped, mention
from assistant.slack.posting import post_message

log = logging.getLogger(__name__)


class SlackNotifier:
    def __init__(self, client: WebClient, *, escalation_channel: str | None, offer_minutes: float):
        self.client = client
        self.escalation_channel = escalation_channel
        self.offer_minutes = int(offer_minutes)

    def _post(self, **kwargs):
        """chat.postMessage, once (retried after a 5xx only when Slack did not post it)."""
        return post_message(self.client, **kwargs)

    def offer(self, request: RequestView, offer: OfferView) -> tuple[str | None, str | None]:
        blocks = ui.offer_blocks(request, offer, self.offer_minutes)
        text = f"Can you help with a question? {escaped(request.question, 150)}"
        # One key per offer: an offer posted again (its process stopped before noting it) is found, not doubled.
        since = offer.offered_at.timestamp() - 5 if offer.offered_at else None
        response = self._dm(offer.mentor_id, blocks, text, key=f"offer:{offer.id}", since=since)
        return (response["channel"], response["ts"]) if response else (None, None)

    def offer_closed(self, offer: OfferView, request: RequestView, why: str) -> None:
        if not (offer.channel_id and offer.message_ts):
            return  # never posted
        self._call(
            "chat.update",
            self.client.chat_update,
            channel=offer.channel_id,
            ts=offer.message_ts,
            blocks=ui.closed_offer_blocks(request, why),
            text=why,
        )

    def tell_asker(self, request: RequestView, notice: Notice, *, cancellable: bool = False) -> None:
        text = notice.render(mention)
        self._dm(request.asker_id, ui.notice_blocks(request, text, cancellable=cancellable), text)

    def tell_mentor(self, mentor_id: str, notice: Notice, request: RequestView) -> None:
        text = notice.render(mention)
        self._dm(mentor_id, ui.notice_blocks(request, text, label="The question"), text)

    def connect(self, request: RequestView) -> str | None:
        opened = self._call(
            "conversations.open", self.client.conversations_open, users=f"{request.asker_id},{request.owner_id}"
        )
        if not opened:
            return None
        channel = opened["channel"]["id"]
        self._call(
            "chat.postMessage",
            self._post,
            channel=channel,
            blocks=ui.conversation_blocks(request),
            text=f"{request.owner_name} is here to help with your question.",
        )
        return channel

    def escalate(self, request: RequestView, why: str) -> None:
        if not self.escalation_channel:
            log.warning("request %s needs a person but MOMENT_ESCALATION_CHANNEL is not set", request.id)
            return
        self._call(
            "chat.postMessage",
            self._post,
            channel=self.escalation_channel,
            blocks=ui.escalation_blocks(request, why),
            text=f"A question needs a person: {escaped(request.question, 150)}",
        )

    def resolved(self, request: RequestView) -> None:
        self.tell_asker(
            request, Notice("{mentor} marked your question resolved. Glad it's sorted!", {"mentor": request.owner_id})
        )
        self._dm(request.owner_id, ui.resolved_blocks(request), "Resolved, thank you!")

    # -- plumbing --------------------------------------------------------------------------------

    def _dm(self, user_id: str, blocks, text: str, **kwargs):
        opened = self._call("conversations.open", self.client.conversations_open, users=user_id)
        if not opened:
            return None
        if blocks:
            kwargs["blocks"] = blocks
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
