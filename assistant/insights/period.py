"""The stretch of time a page covers, and the stretch before it (for trends)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from assistant.db.models import Interaction, utcnow

MAX_DAYS = 366


@dataclass(frozen=True)
class Period:
    """`days` whole days (UTC) up to `end`: the day of `end` and the `days` - 1 days before it."""

    start: dt.datetime
    end: dt.datetime
    days: int

    @classmethod
    def last(cls, days: int = 28, now: dt.datetime | None = None) -> Period:
        """The last `days` days (1 to `MAX_DAYS`; a ValueError otherwise), today included."""
        if not 1 <= days <= MAX_DAYS:
            raise ValueError(f"a period is 1 to {MAX_DAYS} days, not {days}")
        end = now or utcnow()
        first_day = end.date() - dt.timedelta(days=days - 1)
        return cls(dt.datetime.combine(first_day, dt.time(), tzinfo=dt.UTC), end, days)

    def previous(self) -> Period:
        """The same number of days just before this period."""
        return Period(self.start - dt.timedelta(days=self.days), self.start, self.days)

    def holds(self, column=Interaction.created_at):
        """The SQL condition: `column` falls within the period."""
        return (column >= self.start) & (column < self.end)
