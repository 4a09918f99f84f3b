"""content gaps: clusters of questions not answered well, their questions and history; declined questions' vectors

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 02:00:00
"""

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gaps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=True),
        sa.Column("created_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("centroid", sa.LargeBinary(), nullable=False),
        sa.Column("embedding_model", sa.String(200), nullable=False),
        sa.Column("answered_now", sa.Integer(), nullable=True),
        sa.Column("checked_count", sa.Integer(), nullable=True),
        sa.Column("checked_index_version", sa.String(64), nullable=True),
        sa.Column("checked_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_gaps_team_id", "gaps", ["team_id"])
    op.create_index("ix_gaps_status", "gaps", ["status"])
    op.create_table(
        "gap_questions",
        sa.Column(
            "interaction_id",
            sa.Integer(),
            sa.ForeignKey("interactions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("gap_id", sa.Integer(), sa.ForeignKey("gaps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("added_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_now", sa.Boolean(), nullable=True),
    )
    op.create_index("ix_gap_questions_gap_id", "gap_questions", ["gap_id"])
    op.create_index("ix_gap_questions_team_id", "gap_questions", ["team_id"])
    op.create_table(
        "gap_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("gap_id", sa.Integer(), sa.ForeignKey("gaps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.create_index("ix_gap_events_gap_id", "gap_events", ["gap_id"])
    op.create_index("ix_gap_events_team_id", "gap_events", ["team_id"])
    op.create_table(
        "question_vectors",
        sa.Column(
            "interaction_id",
            sa.Integer(),
            sa.ForeignKey("interactions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("embedding_model", sa.String(200), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_question_vectors_team_id", "question_vectors", ["team_id"])


def downgrade() -> None:
    op.drop_index("ix_question_vectors_team_id", table_name="question_vectors")
    op.drop_table("question_vectors")
    for table, columns in (("gap_events", ("gap_id", "team_id")), ("gap_questions", ("gap_id", "team_id"))):
        for column in columns:
            op.drop_index(f"ix_{table}_{column}", table_name=table)
        op.drop_table(table)
    op.drop_index("ix_gaps_status", table_name="gaps")
    op.drop_index("ix_gaps_team_id", table_name="gaps")
    op.drop_table("gaps")
