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


def _questions(team_id: str, period: Period):
    return (Interaction.team_id == team_id) & period.holds() & Interaction.outcome.not_in(NOT_QUESTIONS)


def figures(database: Database, team_id: str, period: Period) -> Figures:
    """One workspace's figures for `period`: four queries, whatever the number of interactions."""
    where = _questions(team_id, period)
    with database.session() as session:
        questions, searched, answered, askers = session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((Interaction.outcome != "error", 1), else_=0)), 0),
                func.coalesce(func.sum(Interaction.answered.cast(Integer)), 0),
                func.count(Interaction.user_id.distinct()),
            ).where(where)
        ).one()
        votes, helpful = session.execute(
            select(func.count(), func.coalesce(func.sum(Vote.helpful.cast(Integer)), 0))
            .join(Interaction, Interaction.id == Vote.interaction_id)
            .where(where)
        ).one()
        handoffs = session.scalar(
            select(func.count()).where(MentorRequest.team_id == team_id, period.holds(MentorRequest.created_at))
        )
        waits = session.execute(
            select(MentorRequest.created_at, MentorRequest.accepted_at).where(
                MentorRequest.team_id == team_id,
                period.holds(MentorRequest.created_at),
                MentorRequest.accepted_at.is_not(None),
            )
        ).all()
    return Figures(
        questions=questions,
        searched=int(searched),
        answered=int(answered),
        votes=votes,
        helpful=int(helpful),
        handoffs=handoffs or 0,
        askers=askers,
        median_minutes_to_mentor=median([(accepted - made).total_seconds() / 60 for made, accepted in waits]),
    )


def per_week(database: Database, team_id: str, period: Period) -> list[dict]:
    """Questions, searched and answered per week (weeks starting on Monday) of the period: counted per day
    in SQL, summed into weeks here (at most a few hundred rows come back)."""
    day = func.date(Interaction.created_at)
    with database.session() as session:
        rows = session.execute(
            select(
                day,
                func.count(),
                func.sum(case((Interaction.outcome != "error", 1), else_=0)),
                func.sum(Interaction.answered.cast(Integer)),
            )
            .where(_questions(team_id, period))
            .group_by(day)
        ).all()
    first = period.start.date() - dt.timedelta(days=period.start.weekday())
    weeks = {}
    monday = first
    while monday < period.end.date() + dt.timedelta(days=1):
        weeks[monday] = {"week": monday.isoformat(), "questions": 0, "searched": 0, "answered": 0}
        monday += dt.timedelta(days=7)
    for date, questions, searched, answered in rows:
        date = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date)[:10])
        week = weeks[date - dt.timedelta(days=date.weekday())]
        week["questions"] += questions
        week["searched"] += int(searched or 0)
        week["answered"] += int(answered or 0)
    return [weeks[w] for w in sorted(weeks)]


def overview(database: Database, team_id: str, period: Period) -> Overview:
    """The overview of `period` for one workspace, with the period before it for trends."""
    return Overview(
        period=period,
        current=figures(database, team_id, period),
        previous=figures(database, team_id, period.previous()),
        weeks=per_week(database, team_id, period),
    )
