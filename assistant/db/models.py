"""Database models (SQLAlchemy 2.0, typed). The schema itself is owned by the Alembic migrations."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every database (SQLite keeps no time zone; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    pass


# Where a question came from.
SURFACES = ("mention", "dm", "slash_command", "shortcut", "app_home", "cli", "api")


class Interaction(Base):
    """One question and what Moment answered."""

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    team_id: Mapped[str | None] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    surface: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    question: Mapped[str] = mapped_column(Text)
    question_chars: Mapped[int] = mapped_column(Integer)  # length as received, before any truncation
    answered: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    index_version: Mapped[str | None] = mapped_column(String(64))
    features: Mapped[dict | None] = mapped_column(JSON)
    answer: Mapped[dict | None] = mapped_column(JSON)  # what was shown, to share or show again

    sources: Mapped[list[InteractionSource]] = relationship(
        back_populates="interaction", cascade="all, delete-orphan", order_by="InteractionSource.rank"
    )
    votes: Mapped[list[Vote]] = relationship(back_populates="interaction", cascade="all, delete-orphan")


class InteractionSource(Base):
    """A document shown for an interaction, with its rank and score."""

    __tablename__ = "interaction_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(512), index=True)
    title: Mapped[str] = mapped_column(String(512))
    type: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
    url: Mapped[str | None] = mapped_column(Text)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)

    interaction: Mapped[Interaction] = relationship(back_populates="sources")


class Vote(Base):
    """Helpful or not, one per person per answer (a new vote replaces the old one)."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("interaction_id", "user_id", name="uq_vote_per_person"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    helpful: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    interaction: Mapped[Interaction] = relationship(back_populates="votes")


class ProcessedEvent(Base):
    """Slack deliveries already handled (event ids, and other idempotency keys), across processes."""

    __tablename__ = "processed_events"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
