"""The questions people asked, newest first, as much of them as the settings let admins see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Integer, and_, case, exists, func, select, tuple_

from assistant.db.database import Database
from assistant.db.models import Interaction, InteractionSource, MentorRequest, Vote
from assistant.insights.period import Period
from assistant.records.reports import NOT_QUESTIONS
from assistant.records.xapi import pseudonym

PAGE_SIZE = 50


@dataclass(frozen=True)
class Privacy:
    """What admins may see of a question: its text (`show_text`, MOMENT_WEB_QUESTION_TEXT) and who asked
    (`pseudonymise`, MOMENT_XAPI_PSEUDONYMISE: the same keyed hash the LRS gets, so the two can be matched)."""

    show_text: bool = True
    pseudonymise: bool = False
    key: bytes = b"moment"

    def asker(self, user_id: str) -> str:
        return pseudonym(self.key, user_id) if self.pseudonymise else user_id


@dataclass
class QuestionRow:
    id: int
    asked_at: dt.datetime
    asker: str  # the Slack user id, or its pseudonym
    question: str | None  # None: hidden by the settings
    outcome: str
    answered: bool
    confidence: float
    top_title: str | None
    top_path: str | None
    helpful: int
    not_helpful: int
    handed_off: bool


@dataclass
class QuestionPage:
    rows: list[QuestionRow]
    next_before: int | None  # the `before` of the next (older) page, None on the last one


def _voted(helpful: bool):
    return exists().where(Vote.interaction_id == Interaction.id, Vote.helpful.is_(helpful))


_handed = exists().where(MentorRequest.interaction_id == Interaction.id)

OUTCOME_FILTERS = {
    "all": None,
    "answered": Interaction.answered.is_(True),
    "not_answered": and_(Interaction.answered.is_(False), Interaction.outcome != "error"),
    "not_helpful": and_(_voted(False), ~_voted(True)),
    "handed_off": _handed,
    "error": Interaction.outcome == "error",
}


def _query(team_id: str, period: Period, show: str):
    if show not in OUTCOME_FILTERS:
        raise ValueError(f"questions are shown as {', '.join(OUTCOME_FILTERS)}, not {show}")
    votes = lambda helpful: (  # noqa: E731 (a correlated count: evaluated for the rows of one page only)
        select(func.count()).where(Vote.interaction_id == Interaction.id, Vote.helpful.is_(helpful)).scalar_subquery()
    )
    top = (
        select(InteractionSource.title, InteractionSource.path, InteractionSource.interaction_id)
        .where(InteractionSource.rank == 1)
        .subquery()
    )
    query = (
        select(
            Interaction.id,
            Interaction.created_at,
            Interaction.user_id,
            Interaction.question,
            Interaction.outcome,
            Interaction.answered,
            Interaction.confidence,
            top.c.title,
            top.c.path,
            votes(True),
            votes(False),
            case((_handed, 1), else_=0).cast(Integer),
        )
        .outerjoin(top, top.c.interaction_id == Interaction.id)
        .where(Interaction.team_id == team_id, period.holds(), Interaction.outcome.not_in(NOT_QUESTIONS))
    )
    if OUTCOME_FILTERS[show] is not None:
        query = query.where(OUTCOME_FILTERS[show])
    return query.order_by(Interaction.created_at.desc(), Interaction.id.desc())


def _row(values, privacy: Privacy) -> QuestionRow:
    id_, at, user, text, outcome, answered, confidence, title, path, helpful, not_helpful, handed = values
    return QuestionRow(
        id=id_,
        asked_at=at,
        asker=privacy.asker(user),
        question=text if privacy.show_text else None,
        outcome=outcome,
        answered=answered,
        confidence=confidence,
        top_title=title,
        top_path=path,
        helpful=helpful,
        not_helpful=not_helpful,
        handed_off=bool(handed),
    )


def question_page(
    database: Database,
    team_id: str,
    period: Period,
    privacy: Privacy,
    *,
    show: str = "all",
    before: int | None = None,
    size: int = PAGE_SIZE,
) -> QuestionPage:
    """One page of the period's questions (those asked before question `before`, when given), newest first;
    `show`: one of `OUTCOME_FILTERS`. One query, however many questions there are."""
    query = _query(team_id, period, show)
    if before is not None:
        asked = select(Interaction.created_at).where(Interaction.id == before).scalar_subquery()
        query = query.where(tuple_(Interaction.created_at, Interaction.id) < tuple_(asked, before))
    with database.session() as session:
        values = session.execute(query.limit(size + 1)).all()
    rows = [_row(v, privacy) for v in values[:size]]
    return QuestionPage(rows, rows[-1].id if len(values) > size else None)


def all_questions(
    database: Database, team_id: str, period: Period, privacy: Privacy, *, show: str = "all"
) -> Iterator[QuestionRow]:
    """Every question of the period (`show` as for `question_page`), streamed from the database."""
    with database.session() as session:
        for values in session.execute(_query(team_id, period, show).execution_options(yield_per=1000)):
            yield _row(values, privacy)
