"""The overview: how much Moment is asked, how well it answers, how often people need a mentor."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Integer, case, func, select

from assistant.db.database import Database
from assistant.db.models import Interaction, MentorRequest, Vote
from assistant.insights.period import Period
from assistant.records.reports import NOT_QUESTIONS, median


@dataclass
class Figures:
    """One period's figures."""

    questions: int = 0
    searched: int = 0  # questions less those not searched because of a system error
    answered: int = 0
    votes: int = 0
    helpful: int = 0
    handoffs: int = 0
    askers: int = 0
    median_minutes_to_mentor: float | None = None  # from the hand-off to a mentor's accepting it

    @property
    def answered_rate(self) -> float | None:
        return self.answered / self.searched if self.searched else None

    @property
    def helpful_rate(self) -> float | None:
        return self.helpful / self.votes if self.votes else None


@dataclass
class Overview:
    period: Period
    current: Figures
    previous: Figures
    weeks: list[dict] = field(default_factory=list)  # {week (Monday, ISO), questions, answered, searched}

    def trend(self, name: str) -> float | None:
        """The change of figure `name` against the period before (a difference of rates for a rate, a
        relative change for a count); None when there is nothing to compare with."""
        now, before = getattr(self.current, name), getattr(self.previous, name)
        if now is None or before is None:
            return None
        if name.endswith("_rate"):
            return now - before
        return (now - before) / before if before else None


def overview(database: Database, team_id: str, period: Period) -> Overview:
    """The overview of `period` for one workspace, with the period before it for trends: four queries over
    both periods at once, whatever the number of interactions (counts per day, askers, votes, hand-offs)."""
    previous = period.previous()
    both = Period(previous.start, period.end, period.days * 2)
    where = (Interaction.team_id == team_id) & both.holds() & Interaction.outcome.not_in(NOT_QUESTIONS)
    current = Interaction.created_at >= period.start
    day = func.date(Interaction.created_at)
    now, before = Figures(), Figures()
    weeks = _weeks(period)
    with database.session() as session:
        per_day = session.execute(
            select(
                day,
                func.count(),
                func.sum(case((Interaction.outcome != "error", 1), else_=0)),
                func.sum(Interaction.answered.cast(Integer)),
            )
            .where(where)
            .group_by(day)
        ).all()
        # (distinct (person, period) pairs counted by hashing: a COUNT(DISTINCT) per period sorts, slower)
        askers = select(Interaction.user_id, current.label("current")).where(where).distinct().subquery()
        for in_current, n in session.execute(select(askers.c.current, func.count()).group_by(askers.c.current)):
            if in_current:
                now.askers = n
            else:
                before.askers = n
        for in_current, votes, helpful in session.execute(
            select(current, func.count(), func.sum(Vote.helpful.cast(Integer)))
            .join(Interaction, Interaction.id == Vote.interaction_id)
            .where(where)
            .group_by(current)
        ):
            figures = now if in_current else before
            figures.votes, figures.helpful = votes, int(helpful or 0)
        requests = session.execute(
            select(MentorRequest.created_at, MentorRequest.accepted_at).where(
                MentorRequest.team_id == team_id, both.holds(MentorRequest.created_at)
            )
        ).all()
    for date, questions, searched, answered in per_day:
        date = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date)[:10])
        figures = now if date >= period.start.date() else before
        figures.questions += questions
        figures.searched += int(searched or 0)
        figures.answered += int(answered or 0)
        if figures is now:
            week = weeks[date - dt.timedelta(days=date.weekday())]
            week["questions"] += questions
            week["searched"] += int(searched or 0)
            week["answered"] += int(answered or 0)
    waits = []
    for made, accepted in requests:
        figures = now if made >= period.start else before
        figures.handoffs += 1
        if figures is now and accepted is not None:
            waits.append((accepted - made).total_seconds() / 60)
    now.median_minutes_to_mentor = median(waits)
    return Overview(period=period, current=now, previous=before, weeks=[weeks[w] for w in sorted(weeks)])


def _weeks(period: Period) -> dict[dt.date, dict]:
    """The period's weeks (from Monday), with nothing counted yet."""
    weeks = {}
    monday = period.start.date() - dt.timedelta(days=period.start.weekday())
    while monday <= period.end.date():
        weeks[monday] = {"week": monday.isoformat(), "questions": 0, "searched": 0, "answered": 0}
        monday += dt.timedelta(days=7)
    return weeks
