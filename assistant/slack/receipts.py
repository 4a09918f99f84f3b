"""Questions recorded before Slack is acknowledged.

A DM or an @mention is claimed (by its event id and by the message: `assistant.records.deliveries`) and
recorded as `received` (`Interactions.receive`) in a Bolt global middleware, so before Bolt answers Slack's
HTTP request: a process that dies right after the acknowledgement leaves the record, and the worker answers
it (`assistant.slack.outbound.answer_questions_left`), posting with the record's delivery key so that an
answer the dead process had already posted is found, not posted again.

The database gets `DEADLINE` seconds (a thread of its own): when it is down or hung, this host's claim
decides and the record is spooled on the host's disk (`Interactions.spool_receipt`, synced before the
acknowledgement) with its receipt, the message's key: written into its database when that is back (by this
process, the next one on the host, or the worker), it is completed by the answer's record, found by the
same key, in whichever order the two arrive; a question whose process died first is answered by the worker.
The acknowledgement is never held longer.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace

from slack_bolt import BoltContext

from assistant.records.deliveries import event_keys, message_key
from assistant.records.interactions import Asker
from assistant.service import MomentService
from assistant.slack.workspaces import OUTSIDER, SHARED, team_of

log = logging.getLogger(__name__)

DEADLINE = 1.0  # seconds the acknowledgement waits for the database
FIRST = "moment_first_delivery"  # context keys: whether this delivery is answered here, its record, its key
RECEIPT = "moment_receipt"
RECEIPT_KEY = "moment_receipt_key"
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
        receipt_key=message_key(team_of(context), event["channel"], event["ts"])
        if event.get("channel") and event.get("ts")
        else None,
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
                log.error("the database did not answer within %.1f s: %s spooled on this host", DEADLINE, keys[0])
                context[FIRST], context[RECEIPT] = first_here, None
            if not private:
                context[RECEIPT_KEY] = asker.receipt_key
                if context[FIRST] and context[RECEIPT] is None:
                    self._spool(event, asker)
        return next()

    def _spool(self, event: dict, asker: Asker) -> None:
        try:
            self.service.records.spool_receipt(event.get("text"), asker)
        except OSError as exc:  # a read-only data folder: answered, but a process stopping now loses it
            log.error("question not spooled (%s: %s): give this user write access to MOMENT_HOME", exc, exc.filename)

    def first(self, body: dict, context: BoltContext) -> bool:
        """Whether this process answers the delivery (decided by the middleware, or claimed now)."""
        decided = context.get(FIRST)
        if decided is not None:
            return decided
        return self.service.claims.claim(*event_keys(body, team_of(context)))[0]

    def asker(self, asker: Asker, context: BoltContext) -> Asker:
        """The asker with the question's record and receipt (none in a channel shared with another organisation:
        answered privately there, never by the worker)."""
        return replace(asker, received_id=context.get(RECEIPT), receipt_key=context.get(RECEIPT_KEY))

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
