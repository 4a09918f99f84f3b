"""Database models of content gaps (assistant/insights/gaps.py) and of the declined questions' embeddings they
cluster. Their rows go with their interaction: the foreign keys delete them (ON DELETE CASCADE) when an
interaction is forgotten or past retention."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from assistant.db.models import Base, UTCDateTime, utcnow


class Gap(Base):
    """A content gap: questions Moment could not answer well (declined, voted not helpful, handed to a mentor),
    grouped by meaning; an admin gives it to an owner, and it is closed by an admin or when its questions are
    answered by the content."""

    __tablename__ = "gaps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    label: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # assistant.insights.gaps.STATUSES
    owner_id: Mapped[str | None] = mapped_column(String(64))  # the content owner it was given to (Slack user id)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The mean of its questions' embeddings (float32, normalised): new questions close to it join the gap.
    centroid: Mapped[bytes] = mapped_column(LargeBinary)
    embedding_model: Mapped[str] = mapped_column(String(200))
    # The last re-ask of its questions against the index: k of n answered, in that index version.
    answered_now: Mapped[int | None] = mapped_column(Integer)
    checked_count: Mapped[int | None] = mapped_column(Integer)
    checked_index_version: Mapped[str | None] = mapped_column(String(64))
    checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    questions: Mapped[list[GapQuestion]] = relationship(back_populates="gap", cascade="all, delete-orphan")
    events: Mapped[list[GapEvent]] = relationship(
        back_populates="gap", cascade="all, delete-orphan", order_by="GapEvent.id"
    )


class GapQuestion(Base):
    """A question's place in a gap (one gap per question); goes when the interaction goes (forget, retention)."""

    __tablename__ = "gap_questions"

    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), primary_key=True)
    gap_id: Mapped[int] = mapped_column(ForeignKey("gaps.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    reason: Mapped[str] = mapped_column(String(16))  # not_answered | not_helpful | handed_off
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, normalised
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_now: Mapped[bool | None] = mapped_column(Boolean)  # at the gap's last re-ask

    gap: Mapped[Gap] = relationship(back_populates="questions")


class GapEvent(Base):
    """A gap's history: who did what, when (created, grew, assigned, closed, reopened, rechecked)."""

    __tablename__ = "gap_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gap_id: Mapped[int] = mapped_column(ForeignKey("gaps.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))  # a Slack user id, or "moment" for what Moment did itself
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)

    gap: Mapped[Gap] = relationship(back_populates="events")


class QuestionVector(Base):
    """A declined question's embedding, as the retriever made it to search: content gaps cluster it without
    embedding it again. Goes when the interaction goes (forget, retention)."""

    __tablename__ = "question_vectors"

    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)  # the workspace it belongs to
    embedding_model: Mapped[str] = mapped_column(String(200))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, normalised
