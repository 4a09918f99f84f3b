"""The overview: how much Moment is asked, how well it answers, how often people need a mentor."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import case, exists, func, select

from assistant.db.database import Database
from assistant.db.models import Interaction, MentorRequest
from assistant.db.rollup_models import DailyQuestions, WorkspaceAsker
from assistant.insights.medians import median_minutes
from assistant.insights.period import Period
from assistant.insights.rollups import as_date, coverage, question_days, vote_days
from assistant.records.reports import NOT_QUESTIONS


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
    askers person by person (two index look-ups each); the hand-offs of both periods, and the median
    wait for a mentor, in SQL."""
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
        in_current = period.holds(MentorRequest.created_at)
        handoffs = session.execute(
            select(in_current, func.count())
            .where(MentorRequest.team_id == team_id, both.holds(MentorRequest.created_at))
            .group_by(in_current)
        ).all()
        waits = median_minutes(
            session,
            MentorRequest.accepted_at,
            MentorRequest.created_at,
            (MentorRequest.team_id == team_id) & in_current & MentorRequest.accepted_at.is_not(None),
        )
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
    for current, count in handoffs:
        (now if current else before).handoffs = count
    now.median_minutes_to_mentor = waits.get(None)
    return Overview(period=period, current=now, previous=before, weeks=[weeks[w] for w in sorted(weeks)])


def _askers(team_id: str, period: Period, previous: Period):
    """(askers in `period`, askers in `previous`): everyone who has questions in the workspace
    (`workspace_askers`, kept by triggers), each looked up in both periods along the (team, person, time)
    index. Its cost follows the number of people, not of questions (a COUNT(DISTINCT) reads every question of
    the periods)."""
    people = WorkspaceAsker

    def asked_in(p: Period):
        held = exists().where(
            Interaction.team_id == team_id,
            Interaction.user_id == people.user_id,
            p.holds(Interaction.created_at),
            Interaction.outcome.not_in(NOT_QUESTIONS),
        )
        return func.coalesce(func.sum(case((held, 1), else_=0)), 0)

    return select(asked_in(period), asked_in(previous)).where(people.team_id == team_id)


def _weeks(period: Period) -> dict[dt.date, dict]:
    """The period's weeks (from Monday), with nothing counted yet."""
    weeks = {}
    monday = period.start.date() - dt.timedelta(days=period.start.weekday())
    while monday <= period.end.date():
        weeks[monday] = {"week": monday.isoformat(), "questions": 0, "searched": 0, "answered": 0}
        monday += dt.timedelta(days=7)
    return weeks
