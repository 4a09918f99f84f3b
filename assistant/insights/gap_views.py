"""What crosses from content gaps to the edges (CLI, Slack, web): frozen views and results, no ORM rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GapSummary:
    """A row of the gaps list."""

    id: int
    label: str
    status: str  # one of STATUSES
    owner_id: str | None
    size: int  # its questions, all time (within retention)
    examples: tuple[str, ...]  # the latest distinct questions
    recent: int  # its questions asked in the period
    previous: int  # in the period before it, as long
    reasons: dict[str, int]  # not_answered / not_helpful / handed_off: how many
    answered_now: int | None  # at the last re-ask: k ...
    checked: int | None  # ... of n
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def trend(self) -> str:
        """`new`, `up`, `down`, `same` or `quiet` (no question in either period)."""
        if self.recent == self.previous:
            return "quiet" if not self.recent else "same"
        if not self.previous:
            return "new"
        return "up" if self.recent > self.previous else "down"

    @property
    def now_answered(self) -> str | None:
        """ "now answered 7 of 9", or None before the first re-ask."""
        if self.checked is None:
            return None
        return f"now answered {self.answered_now} of {self.checked}"

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "label": self.label,
            "status": self.status,
            "owner": self.owner_id,
            "size": self.size,
            "examples": list(self.examples),
            "recent": self.recent,
            "previous": self.previous,
            "trend": self.trend,
            "reasons": self.reasons,
            "answered_now": self.answered_now,
            "checked": self.checked,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class GapQuestionView:
    interaction_id: int
    asked_at: dt.datetime
    user_id: str  # who asked: the Slack user id, or its pseudonym (`Privacy`)
    question: str | None  # None: hidden by the settings (`Privacy`)
    reason: str
    answered_now: bool | None

    def to_dict(self) -> dict:
        return {
            "interaction_id": self.interaction_id,
            "asked_at": self.asked_at.isoformat(),
            "user": self.user_id,
            "question": self.question,
            "reason": self.reason,
            "answered_now": self.answered_now,
        }


@dataclass(frozen=True)
class GapEventView:
    at: dt.datetime
    actor: str
    action: str  # created, grew, assigned, closed, reopened, rechecked
    detail: str | None

    def to_dict(self) -> dict:
        return {"at": self.at.isoformat(), "actor": self.actor, "action": self.action, "detail": self.detail}


@dataclass(frozen=True)
class GapDetail:
    """A gap with all its questions (latest first) and its history (oldest first)."""

    gap: GapSummary
    questions: tuple[GapQuestionView, ...]
    history: tuple[GapEventView, ...]

    def to_dict(self) -> dict:
        return {
            **self.gap.to_dict(),
            "questions": [q.to_dict() for q in self.questions],
            "history": [e.to_dict() for e in self.history],
        }


@dataclass
class RefreshResult:
    new_questions: int = 0  # questions not in a gap before
    joined: int = 0  # of those, put in an existing gap
    new_gaps: int = 0
    reopened: list[int] = field(default_factory=list)  # closed gaps a new question opened again
    waiting: int = 0  # left for the next refresh (over MAX_CLUSTERED)
    seconds: float = 0.0  # in all
    embedded: int = 0  # questions embedded now (the others' embeddings were kept when they were answered)
    embed_seconds: float = 0.0  # of which reading or making the questions' embeddings


@dataclass
class RecheckResult:
    gaps: int = 0  # gaps re-asked
    questions: int = 0
    closed: list[int] = field(default_factory=list)  # gaps closed because all their questions are answered now
