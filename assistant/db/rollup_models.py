"""The admin pages' roll-ups (`assistant.insights.rollups`): per-day figures per workspace and item, the days
changed since, and the workspace's askers, kept beside the records they are derived from (`models.py`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from assistant.db.models import Base, UTCDateTime, utcnow


class DailyQuestions(Base):
    """One workspace's questions of one closed day (UTC), rolled up from the interaction log for the admin pages
    (`assistant.insights.rollups`): kept exact by recomputing a day whenever a record of it changes."""

    __tablename__ = "daily_questions"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    questions: Mapped[int] = mapped_column(Integer)
    searched: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)
    votes: Mapped[int] = mapped_column(Integer)  # votes on the day's questions, whenever cast
    helpful: Mapped[int] = mapped_column(Integer)


class DailyContent(Base):
    """How one content item did in one workspace's answers of one closed day (UTC): the Content page's figures,
    rolled up as `DailyQuestions` is."""

    __tablename__ = "daily_content"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    path: Mapped[str] = mapped_column(String(512), primary_key=True)
    title: Mapped[str] = mapped_column(String(512))
    type: Mapped[str] = mapped_column(String(32))
    shown: Mapped[int] = mapped_column(Integer)
    top: Mapped[int] = mapped_column(Integer)
    helpful: Mapped[int] = mapped_column(Integer)
    not_helpful: Mapped[int] = mapped_column(Integer)
    handoffs: Mapped[int] = mapped_column(Integer)


class RollupState(Base):
    """How far a workspace's days are rolled up: every day before `through` (unless changed since)."""

    __tablename__ = "rollup_state"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    through: Mapped[dt.date] = mapped_column(Date)
    rolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkspaceAsker(Base):
    """Someone who has questions in the workspace's log: kept by database triggers as interactions are written
    and deleted (gone with their last one), so the overview counts active askers person by person."""

    __tablename__ = "workspace_askers"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class RollupChange(Base):
    """A past day (UTC) whose records changed: written by database triggers on interactions, votes and mentor
    requests (so no write path can forget it), read and cleared by the roll-up."""

    __tablename__ = "rollup_changes"
    __table_args__ = (Index("ix_rollup_changes_team_day", "team_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[dt.date] = mapped_column(Date)
