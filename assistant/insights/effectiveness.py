"""Content effectiveness: for every content item, whether it answers people (worst performers first)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from assistant.db.database import Database
from assistant.db.models import Interaction
from assistant.db.rollup_models import DailyContent
from assistant.insights.period import Period
from assistant.insights.rollups import content_days, coverage


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
    figures: the days rolled up summed per item (`assistant.insights.rollups`), the others (today, days changed
    since) counted live from the sources of their answers, with their votes and hand-offs.
    `sort`: one of `CONTENT_SORTS` (a ValueError otherwise); "worst" puts the highest share of bad endings first."""
    if sort not in CONTENT_SORTS:
        raise ValueError(f"content is sorted by {', '.join(CONTENT_SORTS)}, not {sort}")
    items = {c.path: ContentItem(c.path, c.title, c.type, reviewed=c.reviewed, stale=c.stale) for c in catalogue}
    figures = (DailyContent.shown, DailyContent.top, DailyContent.helpful, DailyContent.not_helpful,
               DailyContent.handoffs)  # fmt: skip
    with database.session() as session:
        covered = coverage(session, team_id, period)
        live = (Interaction.team_id == team_id) & covered.live(period)
        rows = session.execute(content_days(team_id, live, by_day=False)).all() + session.execute(
            select(DailyContent.path, func.max(DailyContent.title), func.max(DailyContent.type),
                   *(func.sum(f) for f in figures))
            .where(DailyContent.team_id == team_id, covered.stored(DailyContent.day))
            .group_by(DailyContent.path)
        ).all()  # fmt: skip
    for path, title, type_, shown, top, helpful, not_helpful, handoffs in rows:
        item = items.get(path)
        if item is None:
            item = items[path] = ContentItem(path, title, type_, indexed=False)
        elif not item.indexed:  # met among the live days and the rolled-up ones: the greatest title, as one query
            item.title, item.type = max(item.title, title), max(item.type, type_)
        item.shown += int(shown or 0)
        item.top += int(top or 0)
        item.helpful += int(helpful or 0)
        item.not_helpful += int(not_helpful or 0)
        item.handoffs += int(handoffs or 0)
    ordered = sorted(items.values(), key=CONTENT_SORTS[sort])
    return ordered[::-1] if descending else ordered
