"""Mentor hand-off: a question offered to one mentor at a time until someone accepts.

States: searching → offered → accepted → resolved, with cancelled (by the asker) and escalated (to the
admins' channel, when nobody fits or after the last attempt) on the side. Every transition is one
conditional UPDATE (`… WHERE status IN (…) AND owner_id IS NULL`), so two mentors clicking Accept at
the same moment, a double click, or a timeout racing a decline, in any number of processes, on SQLite
or PostgreSQL, leave exactly one winner. Deadlines live in the database (`offer_expires_at`), and
`sweep()` (run by the worker every few seconds) acts on the ones that have passed, so timers survive
restarts.

This module knows nothing of Slack: it tells a `Notifier` what people need to hear, after the
transaction that made it true has committed, in views (`assistant.mentoring.views`) taken in that
transaction. What Moment showed the asker goes to a mentor only as far as both of them may see it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy import select, update

from assistant.access.tenancy import DEFAULT_TEAM
from assistant.db.database import Database
from assistant.db.models import REQUEST_OPEN, Interaction, Mentor, MentorOffer, MentorRequest, utcnow
from assistant.mentoring.mentors import Candidate, MentorRegistry
from assistant.mentoring.notices import Notice
from assistant.mentoring.requests import MentorRequests, offer_view, request_view
from assistant.mentoring.views import OfferView, RequestView

log = logging.getLogger(__name__)

# A hand-off step untouched this long was left by a process that stopped (the worker's sweep resumes it).
RESUME_AFTER = dt.timedelta(seconds=20)


class HandoffError(Exception):
    """An action that cannot happen (already taken, not yours, ...); the message is for the person."""


class Notifier(Protocol):
    """What people hear about a request. Implemented by the Slack layer; every method must not raise."""

    def offer(self, request: RequestView, offer: OfferView) -> tuple[str | None, str | None]:
        """Offer the request to `offer.mentor_id` (`request.shown`: what they may see); returns where the offer
        was posted (channel, ts)."""

    def offer_closed(self, offer: OfferView, request: RequestView, why: str) -> None:
        """Replace an offer's buttons with why it is closed."""

    def tell_asker(self, request: RequestView, notice: Notice, *, cancellable: bool = False) -> None:
        """`notice` is one of this module's templates (people by user ID, no user text, no markup)."""

    def tell_mentor(self, mentor_id: str, notice: Notice, request: RequestView) -> None: ...

    def connect(self, request: RequestView) -> str | None:
        """Open the conversation of asker, mentor and Moment, with the context (`request.shown`: what both may
        see); returns its id."""

    def escalate(self, request: RequestView, why: str) -> None:
        """Ask the admins' channel to find a person (`request.tried`: who was offered it)."""

    def resolved(self, request: RequestView) -> None:
        """Tell the asker and thank the mentor, offering to save the answer as a job-aid draft."""


# visible(sources, user_ids, team_id): the sources (as stored with an answer) every one of them may see now.
Visible = Callable[[list[dict], Iterable[str], str], list[dict]]


@dataclass(frozen=True)
class HandoffSettings:
    offer_minutes: float = 30.0  # how long a mentor has to accept or decline
    max_attempts: int = 3  # offers before the request goes to the admins' channel
    follow_up_hours: float = 24.0  # remind the owner of an accepted, unresolved request


class Handoff(MentorRequests):
    """Mentor requests from asking to resolution."""

    def __init__(
        self,
        database: Database,
        registry: MentorRegistry,
        notifier: Notifier,
        settings: HandoffSettings | None = None,
        *,
        xapi=None,
        team_id: str | None = None,
        visible: Visible | None = None,
    ) -> None:
        super().__init__(database, team_id)
        self.registry = registry
        self.notifier = notifier
        self.settings = settings or HandoffSettings()
        self.xapi = xapi  # an XapiOutbox: statements are queued in the same transaction as the change
        self.visible = visible  # None: items for some user groups only are shown to no mentor

    # -- asking ----------------------------------------------------------------------------------

    def request(
        self,
        *,
        asker_id: str,
        question: str,
        interaction_id: int | None = None,
        team_id: str | None = None,
        enterprise_id: str | None = None,
        channel_id: str | None = None,
        thread_ts: str | None = None,
        now: dt.datetime | None = None,
        on_recorded: Callable[[], object] | None = None,
        offer: bool = True,
    ) -> RequestView:
        """Open a request and offer it to the best mentor. Asking twice for the same answer is one request.
        `on_recorded()` is called once the request is recorded, before the offer; without `offer`, the
        request stays `searching` for the worker's sweep to offer (`_resume`)."""
        now = now or utcnow()
        with self.database.session() as session:
            if interaction_id is not None:
                existing = session.scalar(
                    select(MentorRequest).where(
                        MentorRequest.interaction_id == interaction_id,
                        MentorRequest.asker_id == asker_id,
                        MentorRequest.status.in_((*REQUEST_OPEN, "accepted")),
                    )
                )
                if existing is not None:
                    raise HandoffError("You've already asked for a mentor for this question; I'll keep you posted.")
            request = MentorRequest(
                asker_id=asker_id,
                question=question,
                interaction_id=interaction_id,
                team_id=team_id or self.team_id or DEFAULT_TEAM,
                enterprise_id=enterprise_id,
                channel_id=channel_id,
                thread_ts=thread_ts,
                status="searching",
                created_at=now,
            )
            session.add(request)
            session.flush()
            request_id = request.id
            if self.xapi is not None:
                self.xapi.mentor_event(session, "requested-mentor", request, asker_id)
        if on_recorded is not None:
            on_recorded()
        if offer:
            self._offer_next(request_id, now, first=True)
        return self.get(request_id)

    def _offer_next(self, request_id: int, now: dt.datetime, *, first: bool = False, after: str | None = None) -> None:
        """Offer an open, unowned request to the next best mentor, or escalate it."""
        with self.database.session() as session:
            request = session.get(MentorRequest, request_id)
            if request is None or request.status not in REQUEST_OPEN or request.owner_id is not None:
                return
            tried = {o.mentor_id for o in request.offers}
            attempts = request.attempts
            answer = _answer(session, request)
            question = request.question
            asker_id = request.asker_id
            team_id = request.team_id
        candidate = None
        if attempts < self.settings.max_attempts:
            found = self.registry.candidates(
                team_id, question, asker_id=asker_id, exclude=tried, owners=_owners(answer), now=now
            )
            candidate = found[0] if found else None
        if candidate is None:
            self._escalate(request_id, now, "nobody fits" if not tried else "no mentor accepted", after=after)
            return
        expires = now + dt.timedelta(minutes=self.settings.offer_minutes)
        with self.database.session() as session:
            claimed = session.execute(
                update(MentorRequest)
                .where(
                    MentorRequest.id == request_id,
                    MentorRequest.attempts == attempts,
                    MentorRequest.owner_id.is_(None),
                    MentorRequest.status.in_(REQUEST_OPEN),
                )
                .values(status="offered", attempts=attempts + 1, offer_expires_at=expires)
            ).rowcount
            if not claimed:  # someone else moved it on meanwhile
                return
            offer = MentorOffer(
                team_id=team_id,
                request_id=request_id,
                mentor_id=candidate.slack_id,
                offered_at=now,
                expires_at=expires,
                reason=candidate.reason,
                score=candidate.score,
            )
            session.add(offer)
            session.execute(
                update(Mentor)
                .where(Mentor.team_id == team_id, Mentor.slack_id == candidate.slack_id)
                .values(last_offered_at=now)
            )
            session.flush()
            view = request_view(session, session.get(MentorRequest, request_id))
            offered = offer_view(offer)
        view = replace(view, shown=self._shown(answer, view, candidate.slack_id))
        if not self._deliver(view, offered):
            # Slack refused it (or it cannot be known to have arrived): the next mentor now, not in 30 minutes,
            # and the asker is told only about an offer that reached someone.
            self._offer_next(request_id, now, first=first, after=after)
            return
        lead = f"{after} " if after else ""
        if first:
            notice = self._asked(candidate.slack_id)
        else:
            text = f"{lead}I've asked another mentor, {{mentor}}, instead. I'll keep you posted."
            notice = Notice(text, {"mentor": candidate.slack_id})
        self.notifier.tell_asker(view, notice, cancellable=first)

    def _asked(self, mentor_id: str) -> Notice:
        return Notice(
            "I've asked {mentor}, a peer mentor who knows this topic, to help with your question. "
            f"I'll tell you as soon as they accept (they have {self._minutes()} to reply).",
            {"mentor": mentor_id},
        )

    def _deliver(self, request: RequestView, offer: OfferView) -> bool:
        """Post the offer to its mentor and note where; False (and the offer closed as undelivered) when
        it was not delivered."""
        channel, ts = self.notifier.offer(request, offer)
        with self.database.session() as session:
            if channel or ts:
                session.execute(
                    update(MentorOffer).where(MentorOffer.id == offer.id).values(channel_id=channel, message_ts=ts)
                )
                return True
            session.execute(
                update(MentorOffer)
                .where(MentorOffer.id == offer.id, MentorOffer.outcome == "pending")
                .values(outcome="undelivered", responded_at=utcnow())
            )
        log.warning("mentor request %s: the offer to %s was not delivered", request.id, offer.mentor_id)
        return False

    def _escalate(self, request_id: int, now: dt.datetime, why: str, *, after: str | None) -> None:
        with self.database.session() as session:
            changed = session.execute(
                update(MentorRequest)
                .where(
                    MentorRequest.id == request_id,
                    MentorRequest.owner_id.is_(None),
                    MentorRequest.status.in_(("searching", "offered")),
                )
                .values(status="escalated", escalated_at=now, offer_expires_at=None)
            ).rowcount
            if not changed:
                return
            view = request_view(session, session.get(MentorRequest, request_id))
        self.notifier.escalate(view, why)
        lead = f"{after} " if after else ""
        self.notifier.tell_asker(
            view,
            Notice(
                f"{lead}No mentor is free for this topic right now, so I've passed your question to the L&D team; "
                "someone will pick it up and I'll tell you who."
            ),
            cancellable=after is None,
        )

    def _shown(self, answer: dict, request: RequestView, mentor_id: str) -> tuple[dict, ...]:
        """What Moment showed the asker, as far as both the asker and the mentor may see it now (an item for
        some user groups only is left out unless both are in one of them). Asked outside any transaction:
        `visible` may read the user groups from Slack and write them to the database."""
        sources = list(answer.get("sources", []))
        if not sources:
            return ()
        if self.visible is not None:
            sources = self.visible(sources, [request.asker_id, mentor_id], request.team_id)
        elif any(s.get("audience") for s in sources):
            sources = [s for s in sources if not s.get("audience")]  # nobody to ask: fail closed
        if not answer.get("answered"):
            # The asker saw only titles ("possibly related"): so does the mentor, as what Moment showed.
            sources = [{k: v for k, v in s.items() if k != "snippet"} for s in sources]
        return tuple(sources)

    # -- mentors' answers ------------------------------------------------------------------------

    def accept(
        self, request_id: int, mentor_id: str, *, may_take_escalated: bool = False, now: dt.datetime | None = None
    ) -> RequestView:
        """The mentor takes the request. Exactly one mentor wins; anyone else gets a `HandoffError`."""
        now = now or utcnow()
        with self.database.session() as session:
            request = self._request(session, request_id)
            if request is None:
                raise HandoffError("That request no longer exists.")
            offered = session.scalar(
                select(MentorOffer).where(MentorOffer.request_id == request_id, MentorOffer.mentor_id == mentor_id)
            )
            if offered is None and not (request.status == "escalated" and may_take_escalated):
                raise HandoffError("This request wasn't offered to you.")
            if request.asker_id == mentor_id:
                raise HandoffError("You can't take your own question.")
            won = session.execute(
                update(MentorRequest)
                .where(
                    MentorRequest.id == request_id,
                    MentorRequest.owner_id.is_(None),
                    MentorRequest.status.in_(REQUEST_OPEN),
                )
                .values(status="accepted", owner_id=mentor_id, accepted_at=now, offer_expires_at=None)
            ).rowcount
            if not won:
                session.rollback()
                raise HandoffError(self._why_closed(session.get(MentorRequest, request_id), mentor_id))
            if offered is not None:
                offered.outcome = "accepted"
                offered.responded_at = now
            closed = _withdraw_pending(session, request_id, now)
            session.flush()
            request = session.get(MentorRequest, request_id)
            session.refresh(request)
            if self.xapi is not None:
                self.xapi.mentor_event(session, "mentored", request, mentor_id)
            view = request_view(session, request)
            answer = _answer(session, request)
        view = replace(view, shown=self._shown(answer, view, mentor_id))
        for other in closed:
            self.notifier.offer_closed(other, view, "Another mentor took this one. Thank you anyway!")
        conversation = self.notifier.connect(view)
        if conversation:
            with self.database.session() as session:
                session.execute(
                    update(MentorRequest).where(MentorRequest.id == request_id).values(conversation_id=conversation)
                )
            view = replace(view, conversation_id=conversation)
        self.notifier.tell_asker(
            view,
            Notice(
                "{mentor} is helping you with your question: I've started a conversation with you both.",
                {"mentor": mentor_id},
            ),
        )
        return view

    def decline(self, request_id: int, mentor_id: str, *, now: dt.datetime | None = None) -> None:
        """The mentor can't take it: offer it to the next one."""
        now = now or utcnow()
        with self.database.session() as session:
            changed = session.execute(
                update(MentorOffer)
                .where(
                    MentorOffer.request_id == request_id,
                    MentorOffer.mentor_id == mentor_id,
                    MentorOffer.outcome == "pending",
                    *self._in_team(MentorOffer),
                )
                .values(outcome="declined", responded_at=now)
            ).rowcount
            request = session.get(MentorRequest, request_id)
        if not changed:
            raise HandoffError(self._why_closed(request, mentor_id) if request else "That request no longer exists.")
        self._offer_next(request_id, now, after="The first mentor I asked can't help right now.")

    def cancel(self, request_id: int, asker_id: str) -> RequestView:
        """The asker no longer needs help."""
        now = utcnow()
        with self.database.session() as session:
            changed = session.execute(
                update(MentorRequest)
                .where(
                    MentorRequest.id == request_id,
                    MentorRequest.asker_id == asker_id,
                    MentorRequest.status.in_((*REQUEST_OPEN, "accepted")),
                    *self._in_team(MentorRequest),
                )
                .values(status="cancelled", cancelled_at=now, offer_expires_at=None)
            ).rowcount
            request = session.get(MentorRequest, request_id)
            if not changed:
                if request is None or request.asker_id != asker_id:
                    raise HandoffError("Only the person who asked can cancel this request.")
                raise HandoffError(f"This request is already {request.status}.")
            pending = _withdraw_pending(session, request_id, now)
            view = request_view(session, request)
        for offer in pending:
            self.notifier.offer_closed(offer, view, "The person who asked doesn't need help any more.")
        if view.owner_id:
            self.notifier.tell_mentor(
                view.owner_id, Notice("{asker} cancelled their request. Thank you!", {"asker": asker_id}), view
            )
        self.notifier.tell_asker(view, Notice("OK, I've cancelled your request for a mentor."))
        return view

    def resolve(self, request_id: int, mentor_id: str, resolution: str | None = None) -> RequestView:
        """The owner marks the request resolved."""
        request = self._mark_resolved(
            request_id,
            MentorRequest.owner_id == mentor_id,
            mentor_id,
            "Only the mentor who took this request can mark it resolved.",
            resolution=resolution,
        )
        self.notifier.resolved(request)
        return request

    def resolve_by_asker(self, request_id: int, asker_id: str) -> RequestView:
        """The asker says their question is sorted (from their thread): the request is resolved."""
        request = self._mark_resolved(
            request_id,
            MentorRequest.asker_id == asker_id,
            asker_id,
            "Only the person who asked can mark this resolved here.",
        )
        self.notifier.tell_mentor(
            request.owner_id,
            Notice("{asker} marked their question resolved. Thank you for helping!", {"asker": asker_id}),
            request,
        )
        return request

    def _mark_resolved(
        self, request_id: int, allowed, by: str, not_allowed: str, resolution: str | None = None
    ) -> RequestView:
        """accepted → resolved when `allowed` (a condition on the request) holds: one conditional UPDATE."""
        with self.database.session() as session:
            changed = session.execute(
                update(MentorRequest)
                .where(
                    MentorRequest.id == request_id,
                    allowed,
                    MentorRequest.status == "accepted",
                    *self._in_team(MentorRequest),
                )
                .values(status="resolved", resolved_at=utcnow(), resolution=resolution)
            ).rowcount
            request = session.get(MentorRequest, request_id)
            if changed and self.xapi is not None:
                session.refresh(request)
                self.xapi.mentor_event(session, "resolved", request, by)
            mine = bool(changed) or (
                request is not None
                and session.scalar(select(MentorRequest.id).where(MentorRequest.id == request_id, allowed)) is not None
            )
            if changed:
                return request_view(session, request)
        if not mine:
            raise HandoffError(not_allowed)
        raise HandoffError(f"This request is already {request.status}.")

    def set_thread_note(self, request_id: int, ts: str | None) -> None:
        """Where the "… is helping" note was posted in the asker's thread (to update it later)."""
        with self.database.session() as session:
            session.execute(update(MentorRequest).where(MentorRequest.id == request_id).values(thread_note_ts=ts))

    def _minutes(self) -> str:
        minutes = int(self.settings.offer_minutes)
        return f"{minutes} minutes" if minutes < 120 else f"{minutes // 60} hours"

    @staticmethod
    def _why_closed(request: MentorRequest | None, mentor_id: str) -> str:
        if request is None:
            return "That request no longer exists."
        if request.owner_id == mentor_id:
            return "You've already accepted this request."
        if request.owner_id:
            return "Someone else has already accepted this request. Thank you anyway!"
        if request.status == "cancelled":
            return "The person who asked has cancelled this request."
        return "This offer has lapsed and the question has moved on. Thank you anyway!"

    # -- timers ----------------------------------------------------------------------------------

    def sweep(self, now: dt.datetime | None = None) -> dict[str, int]:
        """Act on passed deadlines: lapsed offers go to the next mentor; long-open requests get a
        follow-up. Safe to run in several processes at once."""
        now = now or utcnow()
        timed_out = followed = 0
        resumed = self._resume(now)
        with self.database.session() as session:
            lapsed = session.scalars(
                select(MentorOffer).where(
                    MentorOffer.outcome == "pending", MentorOffer.expires_at <= now, *self._in_team(MentorOffer)
                )
            ).all()
        for offer in lapsed:
            with self.database.session() as session:
                won = session.execute(
                    update(MentorOffer)
                    .where(MentorOffer.id == offer.id, MentorOffer.outcome == "pending")
                    .values(outcome="timeout", responded_at=now)
                ).rowcount
                if not won:
                    continue
                view = request_view(session, session.get(MentorRequest, offer.request_id))
                closed = offer_view(session.get(MentorOffer, offer.id))
            timed_out += 1
            self.notifier.offer_closed(closed, view, "No reply in time, so I've offered it to someone else.")
            self._offer_next(offer.request_id, now, after="The mentor I asked hasn't replied in time.")
        cutoff = now - dt.timedelta(hours=self.settings.follow_up_hours)
        with self.database.session() as session:
            stale = session.scalars(
                select(MentorRequest).where(
                    MentorRequest.status == "accepted",
                    MentorRequest.accepted_at <= cutoff,
                    MentorRequest.followed_up_at.is_(None),
                    *self._in_team(MentorRequest),
                )
            ).all()
        for request in stale:
            with self.database.session() as session:
                won = session.execute(
                    update(MentorRequest)
                    .where(MentorRequest.id == request.id, MentorRequest.followed_up_at.is_(None))
                    .values(followed_up_at=now)
                ).rowcount
                if not won:
                    continue
                view = request_view(session, session.get(MentorRequest, request.id))
            followed += 1
            self.notifier.tell_mentor(
                view.owner_id,
                Notice(
                    "A friendly nudge: is {asker}'s question sorted? "
                    "Mark it resolved in the conversation, or from your App Home.",
                    {"asker": view.asker_id},
                ),
                view,
            )
        return {"timed_out": timed_out, "followed_up": followed, "resumed": resumed}

    def _resume(self, now: dt.datetime) -> int:
        """Hand-offs a process left half done when it died: a request still `searching` with no live offer
        (stopped between *Ask a mentor* and the first offer), and an offer recorded but never noted as
        posted (stopped while posting it). Each untouched for `RESUME_AFTER`; the conditional UPDATEs of
        `_offer_next` and the offer's delivery key make a second sweep, or the original process, harmless."""
        stuck, unposted = self.left_behind(now - RESUME_AFTER)
        for request_id in stuck:
            log.warning("mentor request %s was left searching; offering it now", request_id)
            self._offer_next(request_id, now, first=True)
        resent = 0
        for offer in unposted:
            with self.database.session() as session:
                request = session.get(MentorRequest, offer.request_id)
                if request is None or request.status not in REQUEST_OPEN or request.owner_id is not None:
                    continue
                view = request_view(session, request)
                answer = _answer(session, request)
                resent_view = offer_view(offer)
            log.warning("the offer of request %s to %s was never noted as posted; posting it", view.id, offer.mentor_id)
            view = replace(view, shown=self._shown(answer, view, offer.mentor_id))
            if self._deliver(view, resent_view):
                resent += 1
                self.notifier.tell_asker(view, self._asked(offer.mentor_id), cancellable=True)
            else:
                self._offer_next(view.id, now, first=True)
        return len(stuck) + resent


def _answer(session, request: MentorRequest) -> dict:
    """The answer Moment gave the asker, as recorded ({} when there is none)."""
    interaction = session.get(Interaction, request.interaction_id) if request.interaction_id is not None else None
    return (interaction.answer or {}) if interaction else {}


def _owners(answer: dict) -> dict[str, list[str]]:
    """The owners of the content shown, each with the titles they own."""
    owners: dict[str, list[str]] = {}
    for source in answer.get("sources", []):
        if source.get("owner"):
            owners.setdefault(source["owner"], []).append(source.get("title", ""))
    return owners


def _withdraw_pending(session, request_id: int, now: dt.datetime) -> list[OfferView]:
    """Close the request's offers still waiting for an answer (it was taken, or cancelled)."""
    pending = list(
        session.scalars(
            select(MentorOffer).where(MentorOffer.request_id == request_id, MentorOffer.outcome == "pending")
        ).all()
    )
    for offer in pending:
        offer.outcome = "withdrawn"
        offer.responded_at = now
    return [offer_view(offer) for offer in pending]


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_candidates(candidates: list[Candidate]) -> str:
    """For logs and tests: who was considered, in order."""
    return ", ".join(f"{c.name} ({c.score:.2f}{'' if c.available else ', off'})" for c in candidates)
