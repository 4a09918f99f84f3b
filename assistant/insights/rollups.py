"""Daily roll-ups: the figures of each closed day (UTC) of a workspace, so that a page of 365 days sums 365 rows
a figure instead of reading a year of interactions.

- `daily_questions`: questions, searched, answered, votes and helpful votes per day; `daily_content`: the
  Content page's figures per day and item. Votes and hand-offs count on the day of the question they are about.
- A day is rolled up once it has been over for `LAG` (`roll_up`, the worker's `rollups` job, every few
  minutes). Days after `rollup_state.through` (today, and yesterday in the first hour) are counted live.
- Exact whatever changes a past day: database triggers (migration 0014) log the day of every interaction
  inserted, updated or deleted, every vote and every hand-off in `rollup_changes`, whichever code made the
  change (a late vote, a hand-off, a forgotten person, retention, a replayed spool); a logged day is counted
  live until `roll_up` recomputes it. `roll_up` holds the log's lock while it reads, so a change is either
  seen by it or logged after it.

A page asks `coverage(session, team_id, period)` which days to sum from the roll-ups (`Coverage.stored`)
and which to count from the raw rows (`Coverage.live`); both use the same queries (`question_days`,
`vote_days`, `content_days`), grouped by day here and by item on the page.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Date, Integer, case, delete, false, func, or_, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from assistant.db.database import Database
from assistant.db.models import Interaction, InteractionSource, MentorRequest, Vote, utcnow
from assistant.db.rollup_models import DailyContent, DailyQuestions, RollupChange, RollupState
from assistant.records.reports import NOT_QUESTIONS

log = logging.getLogger(__name__)

LAG = dt.timedelta(hours=1)  # a day is rolled up an hour after it ends (writes of that day have committed)
DAY = dt.timedelta(days=1)


class utc_day(FunctionElement):
    """The UTC calendar day of a timestamp column, whatever the database session's time zone."""

    type = Date()
    inherit_cache = True


@compiles(utc_day)
def _utc_day_sqlite(element, compiler, **kw):  # SQLite keeps UTC text (`UTCDateTime`)
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element, compiler, **kw):
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def as_date(value) -> dt.date:
    """A day as SQLite (text) or PostgreSQL (a date) returns it."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _days_held(days: Iterable[dt.date], column=Interaction.created_at):
    """`column` falls on one of `days` (ranges of timestamps, so the indexes on them are used)."""
    return or_(false(), *((column >= midnight(d)) & (column < midnight(d + DAY)) for d in sorted(days)))


@dataclass(frozen=True)
class Coverage:
    """The whole days of a period that come from the roll-ups: [`first`, `end`) but for `changed` ones."""

    first: dt.date
    end: dt.date
    changed: frozenset[dt.date]

    def stored(self, day_column):
        """The SQL condition on a roll-up's day: summed from the roll-up."""
        return (day_column >= self.first) & (day_column < self.end) & day_column.not_in(self.changed)

    def live(self, period, column=Interaction.created_at):
        """The SQL condition on a record's timestamp: within `period`, and on a day not summed from a roll-up
        (ranges of timestamps OR-ed, each an index range of its own)."""
        if self.first >= self.end:
            return period.holds(column)
        ranges = [(period.start, midnight(self.first)), (midnight(self.end), period.end)]
        ranges += [(midnight(d), midnight(d + DAY)) for d in sorted(self.changed)]
        return or_(false(), *((column >= a) & (column < b) for a, b in ranges if a < b))


def coverage(session, team_id: str, period) -> Coverage:
    """Which whole days of `period` the roll-ups hold for the workspace (none before the first `roll_up`)."""
    first = period.start.date() + (DAY if period.start != midnight(period.start.date()) else dt.timedelta())
    state = session.get(RollupState, team_id)
    end = min(period.end.date(), state.through) if state else first
    if first >= end:
        return Coverage(first, first, frozenset())
    changed = session.scalars(
        select(RollupChange.day)
        .where(RollupChange.team_id == team_id, RollupChange.day >= first, RollupChange.day < end)
        .distinct()
    ).all()
    return Coverage(first, end, frozenset(as_date(d) for d in changed))


# -- the queries, shared by the roll-up and the pages' live counts ---------------------------------------------


def question_days(where):
    """(day, questions, searched, answered) per day of the interactions `where` selects."""
    day = utc_day(Interaction.created_at)
    return (
        select(
            day,
            func.count(),
            func.sum(case((Interaction.outcome != "error", 1), else_=0)),
            func.sum(Interaction.answered.cast(Integer)),
        )
        .where(where, Interaction.outcome.not_in(NOT_QUESTIONS))
        .group_by(day)
    )


def vote_days(where):
    """(day, votes, helpful votes) per day of the questions `where` selects (the day of the question voted on)."""
    day = utc_day(Interaction.created_at)
    return (
        select(day, func.count(), func.sum(Vote.helpful.cast(Integer)))
        .join(Interaction, Interaction.id == Vote.interaction_id)
        .where(where, Interaction.outcome.not_in(NOT_QUESTIONS))
        .group_by(day)
    )


def content_days(team_id: str, where, *, by_day: bool):
    """Per content item (and per day with `by_day`): (path, [day,] title, type, shown, shown first, helpful and
    not helpful votes and hand-offs of the answers it was first in), over the answers `where` selects."""
    answers = where & Interaction.answered.is_(True)
    votes = (
        select(
            Vote.interaction_id.label("interaction_id"),
            func.sum(Vote.helpful.cast(Integer)).label("helpful"),
            func.sum(case((Vote.helpful.is_(False), 1), else_=0)).label("not_helpful"),
        )
        .join(Interaction, Interaction.id == Vote.interaction_id)
        .where(answers)
        .group_by(Vote.interaction_id)
        .subquery()
    )
    handed = (
        select(MentorRequest.interaction_id.label("interaction_id"))
        .where(MentorRequest.team_id == team_id, MentorRequest.interaction_id.is_not(None))
        .distinct()
        .subquery()
    )
    first = InteractionSource.rank == 1
    keys = [InteractionSource.path, utc_day(Interaction.created_at)] if by_day else [InteractionSource.path]
    return (
        select(
            *keys,
            func.max(InteractionSource.title),
            func.max(InteractionSource.type),
            func.count(),
            func.sum(case((first, 1), else_=0)),
            func.sum(case((first, func.coalesce(votes.c.helpful, 0)), else_=0)),
            func.sum(case((first, func.coalesce(votes.c.not_helpful, 0)), else_=0)),
            func.sum(case((first & handed.c.interaction_id.is_not(None), 1), else_=0)),
        )
        .join(Interaction, Interaction.id == InteractionSource.interaction_id)
        .outerjoin(votes, votes.c.interaction_id == InteractionSource.interaction_id)
        .outerjoin(handed, handed.c.interaction_id == InteractionSource.interaction_id)
        .where(answers)
        .group_by(*keys)
    )


# -- rolling up -------------------------------------------------------------------------------------------------


@dataclass
class RollUp:
    team_id: str
    days: int  # days recomputed
    through: dt.date  # days before it are rolled up


def roll_up(database: Database, team_ids: Iterable[str], now: dt.datetime | None = None) -> list[RollUp]:
    """Roll up each workspace's closed days not yet rolled up, and recompute those changed since (one
    transaction per workspace, the change log locked meanwhile: a change made while it runs waits for it,
    and is then logged for the next run)."""
    target = ((now or utcnow()) - LAG).date()
    return [_roll_up_team(database, team_id, target) for team_id in team_ids]


def _lock_change_log(session) -> None:
    if session.bind.dialect.name == "postgresql":
        session.execute(text("LOCK TABLE rollup_changes IN EXCLUSIVE MODE"))
    else:  # SQLite: a write takes the database's one write lock, and the snapshot read after it is current
        session.execute(delete(RollupChange).where(false()))


def _roll_up_team(database: Database, team_id: str, target: dt.date) -> RollUp:
    with database.session() as session:
        _lock_change_log(session)
        team = Interaction.team_id == team_id
        state = session.get(RollupState, team_id)
        changed = {
            as_date(d)
            for d in session.scalars(select(RollupChange.day).where(RollupChange.team_id == team_id).distinct())
        }
        if state is None:
            oldest = session.scalar(select(func.min(Interaction.created_at)).where(team))
            state = RollupState(team_id=team_id, through=min(oldest.date(), target) if oldest else target)
            session.add(state)
        start = min(state.through, target)
        changed = {d for d in changed if d < start}
        where = team & (((Interaction.created_at >= midnight(start)) & (Interaction.created_at < midnight(target)))
                        | _days_held(changed))  # fmt: skip
        for table in (DailyQuestions, DailyContent):
            recomputed = ((table.day >= start) & (table.day < target)) | table.day.in_(changed)
            session.execute(delete(table).where(table.team_id == team_id, recomputed))
        days: dict[dt.date, dict] = {}
        for day, questions, searched, answered in session.execute(question_days(where)):
            days[as_date(day)] = {"questions": questions, "searched": int(searched or 0),
                                  "answered": int(answered or 0), "votes": 0, "helpful": 0}  # fmt: skip
        for day, votes, helpful in session.execute(vote_days(where)):
            days[as_date(day)].update(votes=votes, helpful=int(helpful or 0))
        if days:
            rows = [{"team_id": team_id, "day": d, **v} for d, v in days.items()]
            session.execute(DailyQuestions.__table__.insert(), rows)
        content = [
            {"team_id": team_id, "path": path, "day": as_date(day), "title": title, "type": type_, "shown": shown,
             "top": int(top or 0), "helpful": int(helpful or 0), "not_helpful": int(not_helpful or 0),
             "handoffs": int(handoffs or 0)}
            for path, day, title, type_, shown, top, helpful, not_helpful, handoffs
            in session.execute(content_days(team_id, where, by_day=True))
        ]  # fmt: skip
        for batch in range(0, len(content), 5000):
            session.execute(DailyContent.__table__.insert(), content[batch : batch + 5000])
        session.execute(delete(RollupChange).where(RollupChange.team_id == team_id))
        state.through = max(state.through, target)
        state.rolled_at = utcnow()
        recomputed_days = len(changed) + max((target - start).days, 0)
        through = state.through
    if recomputed_days:
        log.info("roll-up of %s: %d days recomputed, rolled up to %s", team_id, recomputed_days, through)
    return RollUp(team_id, recomputed_days, through)
