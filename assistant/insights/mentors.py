"""How mentors respond to the questions handed to them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select

from assistant.db.database import Database
from assistant.db.models import Mentor, MentorOffer, MentorRequest
from assistant.insights.medians import median_minutes
from assistant.insights.period import Period


@dataclass
class MentorRow:
    mentor_id: str
    name: str | None  # None: not (or no longer) in the registry
    offered: int = 0
    accepted: int = 0
    declined: int = 0
    timed_out: int = 0
    resolved: int = 0  # of the requests they accepted, resolved within the period
    median_minutes_to_respond: float | None = None  # from the offer to accepting or declining it
    active: bool = False


def mentor_figures(database: Database, team_id: str, period: Period) -> list[MentorRow]:
    """Every mentor of the workspace, and anyone offered a question in the period: offers and how they
    ended (GROUP BY in SQL), requests resolved, the median minutes to respond (in SQL). Most offered first."""
    outcome = lambda name: func.sum(case((MentorOffer.outcome == name, 1), else_=0))  # noqa: E731
    offered = period.holds(MentorOffer.offered_at)
    with database.session() as session:
        mentors = session.scalars(select(Mentor).where(Mentor.team_id == team_id)).all()
        counts = session.execute(
            select(MentorOffer.mentor_id, func.count(), outcome("accepted"), outcome("declined"), outcome("timeout"))
            .where(MentorOffer.team_id == team_id, offered)
            .group_by(MentorOffer.mentor_id)
        ).all()
        responses = median_minutes(
            session,
            MentorOffer.responded_at,
            MentorOffer.offered_at,
            (MentorOffer.team_id == team_id)
            & offered
            & MentorOffer.responded_at.is_not(None)
            & MentorOffer.outcome.in_(("accepted", "declined")),
            group=MentorOffer.mentor_id,
        )
        resolved = session.execute(
            select(MentorRequest.owner_id, func.count())
            .where(MentorRequest.team_id == team_id, period.holds(MentorRequest.resolved_at))
            .group_by(MentorRequest.owner_id)
        ).all()
    rows = {m.slack_id: MentorRow(m.slack_id, m.name, active=m.active) for m in mentors}
    for mentor_id, n, accepted, declined, timed_out in counts:
        row = rows.setdefault(mentor_id, MentorRow(mentor_id, None))
        row.offered, row.accepted, row.declined, row.timed_out = n, int(accepted), int(declined), int(timed_out)
    for mentor_id, minutes in responses.items():
        rows[mentor_id].median_minutes_to_respond = minutes
    for owner, n in resolved:
        if owner:
            rows.setdefault(owner, MentorRow(owner, None)).resolved = n
    return sorted(rows.values(), key=lambda r: (-r.offered, -r.resolved, (r.name or r.mentor_id).lower()))
