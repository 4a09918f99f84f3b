"""Questions recorded before Slack is acknowledged.

A DM or an @mention is claimed (by its event id and by the message: `assistant.records.deliveries`) and
recorded as `received` (`Interactions.receive`) in a Bolt global middleware, so before Bolt answers Slack's
HTTP request: a process that dies right after the acknowledgement leaves the record, and the worker answers
it (`assistant.slack.outbound.answer_questions_left`), posting with the record's delivery key so that an
answer the dead process had already posted is found, not posted again.

The database gets `DEADLINE` seconds (a thread of its own): when it is down or hung, this host's claim
decides, no record is made here (the answer's record is spooled as usual), and the acknowledgement is not
held.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from slack_bolt import BoltContext

from assistant.records.deliveries import event_keys
from assistant.records.interactions import Asker
from assistant.service import MomentService
from assistant.slack.workspaces import OUTSIDER, SHARED, team_of

log = logging.getLogger(__name__)

DEADLINE = 1.0  # seconds the acknowledgement waits for the database
FIRST = "moment_first_delivery"  # context keys: whether this delivery is answered here, and its record
RECEIPT = "moment_receipt"
# Subtypes of a direct message that are still a person asking (a screenshot, a reply also sent to the DM).
DM_SUBTYPES = (None, "file_share", "thread_broadcast")


def question_asker(event: dict, context: BoltContext) -> Asker | None:
    """Who asked what, where, for an event that is a question put to Moment (a DM or an @mention); None
    for any other event."""
    if event.get("bot_id"):
        return None
    if event.get("type") == "app_mention":
        surface, thread_ts = "mention", event.get("thread_ts") or event.get("ts")
    elif event.get("type") == "message" and event.get("channel_type") == "im":
        if event.get("subtype") not in DM_SUBTYPES:
            return None
        surface, thread_ts = "dm", event.get("thread_ts")
        if event.get("subtype") == "thread_broadcast":
            thread_ts = thread_ts or event.get("ts")
    else:
        return None
    return Asker(
        user_id=event.get("user", "unknown"),
        surface=surface,
        team_id=team_of(context),
        enterprise_id=context.enterprise_id,
        channel_id=event.get("channel"),
        thread_ts=thread_ts,
    )


class Receipts:
    def __init__(self, service: MomentService) -> None:
        self.service = service
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="moment-receipt")

    def middleware(self, body: dict, context: BoltContext, next) -> None:
        """Bolt global middleware: claim and record a question before the acknowledgement."""
        event = body.get("event") or {}
        asker = question_asker(event, context) if body.get("type") == "event_callback" else None
        if asker is not None:
            claims = self.service.claims
            keys = claims.keys(*event_keys(body, team_of(context)))
            first_here = claims.note(keys)  # on this host's disk: decides if the database cannot
            # No record to resume in a channel shared with another organisation (answered privately there).
            private = context[OUTSIDER] or context[SHARED]
            abandoned = threading.Event()
            work = self._pool.submit(self._claim_and_record, keys, first_here, event, asker, private, abandoned)
            try:
                context[FIRST], context[RECEIPT] = work.result(timeout=DEADLINE)
            except FutureTimeout:
                abandoned.set()
                log.error("the database did not answer within %.1f s: %s answered unrecorded", DEADLINE, keys[0])
                context[FIRST], context[RECEIPT] = first_here, None
        return next()

    def first(self, body: dict, context: BoltContext) -> bool:
        """Whether this process answers the delivery (decided by the middleware, or claimed now)."""
        decided = context.get(FIRST)
        if decided is not None:
            return decided
        return self.service.claims.claim(*event_keys(body, team_of(context)))[0]

    def take(self, asker: Asker) -> bool:
        """Whether the listener answers its recorded question (not when the worker took it meanwhile)."""
        return asker.received_id is None or self.service.records.start_answering(asker.received_id)

    def _claim_and_record(
        self,
        keys: tuple[str, ...],
        first_here: bool,
        event: dict,
        asker: Asker,
        unrecorded: bool,
        abandoned: threading.Event,
    ) -> tuple[bool, int | None]:
        def record(session) -> int | None:
            if unrecorded or abandoned.is_set():
                return None
            return self.service.records.receive_in(session, event.get("text"), asker)

        first, receipt = self.service.claims.decide(keys, first_here, with_claim=record)
        if receipt is not None and abandoned.is_set():
            # Too late: the listener answers without it; a record left would be answered twice.
            self.service.records.discard_receipt(receipt)
            receipt = None
        return first, receipt
