"""Content effectiveness: for every content item, whether it answers people (worst performers first)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Integer, case, func, select

from assistant.db.database import Database
from assistant.db.models import Interaction, InteractionSource, MentorRequest, Vote
from assistant.insights.period import Period


@dataclass
class ContentItem:
    path: str
    title: str
    type: str
    shown: int = 0  # among the sources of an answer
    top: int = 0  # shown first: the answer's passage came from it
    helpful: int = 0  # votes on the answers it was first in
    not_helpful: int = 0
    handoffs: int = 0  # answers it was first in that were handed to a mentor
    reviewed: dt.date | None = None
    stale: bool = False
    indexed: bool = True  # False: no longer in the index (shown in the period, since removed)

    @property
    def trouble(self) -> float:
        """The share of its first showings that ended badly (a not-helpful vote or a hand-off)."""
        return (self.not_helpful + self.handoffs) / self.top if self.top else 0.0

    @property
    def helpful_rate(self) -> float | None:
        votes = self.helpful + self.not_helpful
        return self.helpful / votes if votes else None


@dataclass(frozen=True)
class CatalogueItem:
    """What the index says of an item (`MomentService.content_catalogue`)."""

    path: str
    title: str
    type: str
    reviewed: dt.date | None
    stale: bool


def _worst(item: ContentItem):
    return (-item.trouble, -(item.not_helpful + item.handoffs), not item.stale, -item.top, item.path)


CONTENT_SORTS = {
    "worst": _worst,
    "title": lambda i: (i.title.lower(), i.path),
    "shown": lambda i: (i.shown, i.path),
    "top": lambda i: (i.top, i.path),
    "helpful": lambda i: (i.helpful, i.path),
    "not_helpful": lambda i: (i.not_helpful, i.path),
    "handoffs": lambda i: (i.handoffs, i.path),
    "reviewed": lambda i: (i.reviewed or dt.date.min, i.path),
    "stale": lambda i: (i.stale, i.path),
}


def content_items(
    database: Database,
    team_id: str,
    period: Period,
    catalogue: Iterable[CatalogueItem] = (),
    *,
    sort: str = "worst",
    descending: bool = False,
) -> list[ContentItem]:
    """Every item of `catalogue` (the index), and any other item answers came from in `period`, with its
    figures: one query (sources of the period's answers, their votes and hand-offs aggregated per item).
    `sort`: one of `CONTENT_SORTS` (a ValueError otherwise); "worst" puts the highest share of bad endings first."""
    if sort not in CONTENT_SORTS:
        raise ValueError(f"content is sorted by {', '.join(CONTENT_SORTS)}, not {sort}")
    answers = (Interaction.team_id == team_id) & period.holds() & Interaction.answered.is_(True)
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
    query = (
        select(
            InteractionSource.path,
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
        .group_by(InteractionSource.path)
    )
    items = {c.path: ContentItem(c.path, c.title, c.type, reviewed=c.reviewed, stale=c.stale) for c in catalogue}
    with database.session() as session:
        for path, title, type_, shown, top, helpful, not_helpful, handoffs in session.execute(query):
            item = items.get(path) or items.setdefault(path, ContentItem(path, title, type_, indexed=False))
            item.shown, item.top = shown, int(top or 0)
            item.helpful, item.not_helpful, item.handoffs = int(helpful or 0), int(not_helpful or 0), int(handoffs or 0)
    ordered = sorted(items.values(), key=CONTENT_SORTS[sort])
    return ordered[::-1] if descending else ordered
