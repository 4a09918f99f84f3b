"""content sources that stay in sync, and the Slack people their readers map to

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 22:30:00
"""

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "content_sources",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("schedule_minutes", sa.Integer(), nullable=False),
        sa.Column("prune_hours", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("cursor", sa.JSON(), nullable=True),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.String(64), nullable=True),
        sa.Column("added_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.String(16), nullable=True),
        sa.Column("last_started_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_good_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_changes", sa.JSON(), nullable=True),
        sa.Column("last_failures", sa.JSON(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_run_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_prune_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_holder", sa.String(128), nullable=True),
        sa.Column("lease_until", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "source_people",
        sa.Column("team_id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("looked_up_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("source_people")
    op.drop_table("content_sources")
