"""verified answers: questions taught by mentors and admins, answered from one section

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 23:20:00
"""

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verified_answers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("embedding", sa.JSON(), nullable=False),
        sa.Column("embedding_model", sa.String(200), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("heading_path", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("taught_by", sa.String(64), nullable=False),
        sa.Column("taught_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_verified_answers_team_id", "verified_answers", ["team_id"])
    op.create_index("ix_verified_answers_path", "verified_answers", ["path"])


def downgrade() -> None:
    op.drop_index("ix_verified_answers_path", table_name="verified_answers")
    op.drop_index("ix_verified_answers_team_id", table_name="verified_answers")
    op.drop_table("verified_answers")
