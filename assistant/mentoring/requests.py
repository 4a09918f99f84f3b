"""Mentor requests as their readers see them: a mentor's queue in App Home, the open requests, one request.

`Handoff` changes requests and is one of these readers too; views are taken in the reading transaction, so
they say what was true when it committed.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from assistant.db.database import Database
from assistant.db.models import REQUEST_OPEN, Mentor, MentorOffer, MentorRequest
from assistant.mentoring.views import OfferView, RequestView, snapshot


class MentorRequests:
    """The mentor requests of one workspace (`team_id`), or of every workspace (None: the worker's sweep)."""

    def __init__(self, database: Database, team_id: str | None = None) -> None:
        self.team_id = team_id  # the workspace of whoever acts; None: every workspace (the worker's sweep)
        self.database = database

    def get(self, request_id: int) -> RequestView | None:
        """The request, when it is this workspace's."""
        with self.database.session() as session:
            request = self._request(session, request_id)
            return request_view(session, request) if request is not None else None

    def _in_team(self, model) -> tuple:
        """The condition that a row is this workspace's (none for the worker's sweep of every workspace)."""
        return () if self.team_id is None else (model.team_id == self.team_id,)

    def _request(self, session, request_id: int) -> MentorRequest | None:
        request = session.get(MentorRequest, request_id)
        if request is None or (self.team_id is not None and request.team_id != self.team_id):
            return None  # another workspace's request is nobody's business here
        return request

    def left_behind(self, cutoff: dt.datetime) -> tuple[list[int], list[MentorOffer]]:
        """What a stopped process left half done, untouched since `cutoff`: (ids of requests still
        `searching` with no live offer, offers recorded but never noted as posted)."""
        with self.database.session() as session:
            stuck = session.scalars(
                select(MentorRequest.id).where(
                    MentorRequest.status == "searching",
                    MentorRequest.owner_id.is_(None),
                    MentorRequest.created_at <= cutoff,
                    ~MentorRequest.offers.any(MentorOffer.outcome == "pending"),
                    *self._in_team(MentorRequest),
                )
            ).all()
            unposted = session.scalars(
                select(MentorOffer).where(
                    MentorOffer.outcome == "pending",
                    MentorOffer.message_ts.is_(None),
                    MentorOffer.offered_at <= cutoff,
                    *self._in_team(MentorOffer),
                )
            ).all()
        return list(stuck), list(unposted)

    def pending_for(self, mentor_id: str) -> tuple[list[RequestView], list[RequestView]]:
        """(offered to the mentor and waiting, accepted by them and open) for their App Home."""
        with self.database.session() as session:
            offered = session.scalars(
                select(MentorRequest)
                .options(selectinload(MentorRequest.offers))
                .join(MentorOffer, MentorOffer.request_id == MentorRequest.id)
                .where(
                    *self._in_team(MentorRequest),
                    MentorOffer.mentor_id == mentor_id,
                    MentorOffer.outcome == "pending",
                )
                .order_by(MentorRequest.created_at)
            ).all()
            owned = session.scalars(
                select(MentorRequest)
                .options(selectinload(MentorRequest.offers))
                .where(
                    *self._in_team(MentorRequest),
                    MentorRequest.owner_id == mentor_id,
                    MentorRequest.status == "accepted",
                )
                .order_by(MentorRequest.accepted_at)
            ).all()
            return [request_view(session, r) for r in offered], [request_view(session, r) for r in owned]

    def open_requests(self) -> list[RequestView]:
        """The requests still open or accepted, oldest first."""
        with self.database.session() as session:
            return [
                request_view(session, r)
                for r in session.scalars(
                    select(MentorRequest)
                    .options(selectinload(MentorRequest.offers))
                    .where(*self._in_team(MentorRequest), MentorRequest.status.in_((*REQUEST_OPEN, "accepted")))
                    .order_by(MentorRequest.created_at)
                ).all()
            ]


def request_view(session, request: MentorRequest) -> RequestView:
    """The request as it stands in `session`'s transaction (`shown` left empty: it depends on who reads it)."""
    owner = session.get(Mentor, (request.team_id, request.owner_id)) if request.owner_id else None
    return snapshot(
        RequestView,
        request,
        owner_name=owner.name if owner else request.owner_id,
        tried=tuple(o.mentor_id for o in request.offers),
        shown=(),
    )


def offer_view(offer: MentorOffer) -> OfferView:
    """The offer as it stands in its session's transaction."""
    return snapshot(OfferView, offer)
