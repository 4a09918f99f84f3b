"""The overview: how much Moment is asked, how well it answers, how often people need a mentor."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import aliased

from assistant.db.database import Database
from assistant.db.models import DailyQuestions, Interaction, MentorRequest
from assistant.insights.period import Period
from assistant.insights.rollups import as_date, coverage, question_days, vote_days
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
    """The overview of `period` for one workspace, with the period before it for trends: the days rolled up
    (`assistant.insights.rollups`) summed, the others (today, and days changed since) counted live; active
    askers by a skip scan of the people who asked (two index look-ups each); the hand-offs of both periods."""
    previous = period.previous()
    both = Period(previous.start, period.end, period.days * 2)
    now, before = Figures(), Figures()
    weeks = _weeks(period)
    with database.session() as session:
        covered = coverage(session, team_id, both)
        live = (Interaction.team_id == team_id) & covered.live(both)
        stored = DailyQuestions.team_id == team_id, covered.stored(DailyQuestions.day)
        per_day = (
            session.execute(question_days(live)).all()
            + session.execute(
                select(
                    DailyQuestions.day, DailyQuestions.questions, DailyQuestions.searched, DailyQuestions.answered
                ).where(*stored)
            ).all()
        )
        votes = (
            session.execute(vote_days(live)).all()
            + session.execute(
                select(DailyQuestions.day, DailyQuestions.votes, DailyQuestions.helpful).where(*stored)
            ).all()
        )
        now.askers, before.askers = session.execute(_askers(team_id, period, previous)).one()
        requests = session.execute(
            select(MentorRequest.created_at, MentorRequest.accepted_at).where(
                MentorRequest.team_id == team_id, both.holds(MentorRequest.created_at)
            )
        ).all()
    first_day = period.start.date()
    for date, questions, searched, answered in per_day:
        date = as_date(date)
        figures = now if date >= first_day else before
        figures.questions += questions
        figures.searched += int(searched or 0)
        figures.answered += int(answered or 0)
        if figures is now:
            week = weeks[date - dt.timedelta(days=date.weekday())]
            week["questions"] += questions
            week["searched"] += int(searched or 0)
            week["answered"] += int(answered or 0)
    for date, count, helpful in votes:
        figures = now if as_date(date) >= first_day else before
        figures.votes += count
        figures.helpful += int(helpful or 0)
    waits = []
    for made, accepted in requests:
        figures = now if made >= period.start else before
        figures.handoffs += 1
        if figures is now and accepted is not None:
            waits.append((accepted - made).total_seconds() / 60)
    now.median_minutes_to_mentor = median(waits)
    return Overview(period=period, current=now, previous=before, weeks=[weeks[w] for w in sorted(weeks)])


def _askers(team_id: str, period: Period, previous: Period):
    """(askers in `period`, askers in `previous`): everyone who ever asked in the workspace, found one after the
    other along the (team, person, time) index, each looked up in both periods there. Its cost follows the
    number of people, not of questions (a COUNT(DISTINCT) reads every question of the periods)."""
    found, probe = aliased(Interaction), aliased(Interaction)
    people = select(func.min(Interaction.user_id).label("user_id")).where(Interaction.team_id == team_id)
    people = people.cte("people", recursive=True)
    following = select(func.min(found.user_id)).where(found.team_id == team_id, found.user_id > people.c.user_id)
    people = people.union_all(select(following.scalar_subquery()).where(people.c.user_id.is_not(None)))

    def asked_in(p: Period):
        held = exists().where(
            probe.team_id == team_id,
            probe.user_id == people.c.user_id,
            p.holds(probe.created_at),
            probe.outcome.not_in(NOT_QUESTIONS),
        )
        return func.coalesce(func.sum(case((held, 1), else_=0)), 0)

    return select(asked_in(period), asked_in(previous)).where(people.c.user_id.is_not(None))


def _weeks(period: Period) -> dict[dt.date, dict]:
    """The period's weeks (from Monday), with nothing counted yet."""
    weeks = {}
    monday = period.start.date() - dt.timedelta(days=period.start.weekday())
    while monday <= period.end.date():
        weeks[monday] = {"week": monday.isoformat(), "questions": 0, "searched": 0, "answered": 0}
        monday += dt.timedelta(days=7)
    return weeks
