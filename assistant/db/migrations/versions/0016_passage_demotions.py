"""passage demotions: a Not helpful vote keeps its section from answering questions close to the one voted on

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 02:50:00
"""

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "passage_demotions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("embedding", sa.JSON(), nullable=False),
        sa.Column("embedding_model", sa.String(200), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("heading_path", sa.JSON(), nullable=False),
        sa.Column("created_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("interaction_id", "user_id", name="uq_demotion_per_vote"),
    )
    op.create_index("ix_passage_demotions_team_id", "passage_demotions", ["team_id"])
    op.create_index("ix_passage_demotions_interaction_id", "passage_demotions", ["interaction_id"])
    op.create_index("ix_passage_demotions_user_id", "passage_demotions", ["user_id"])


def downgrade() -> None:
    op.drop_table("passage_demotions")
