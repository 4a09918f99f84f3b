"""help channels, their answer queue, question followers, the hand-off's note in the asker's thread

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:00:00
"""

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "help_channels",
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("types", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("folders", sa.JSON(), nullable=False),
        sa.Column("answer_bots", sa.Boolean(), nullable=False),
        sa.Column("offer_mentor", sa.Boolean(), nullable=False),
        sa.Column("min_confidence", sa.Float(), nullable=True),
        sa.Column("added_by", sa.String(length=64), nullable=True),
        sa.Column("added_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("drainer", sa.String(length=64), nullable=True),
        sa.Column("drain_until", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("channel_id"),
    )
    op.create_table(
        "help_queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("message_ts", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["interaction_id"], ["interactions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id", "message_ts", name="uq_help_queue_message"),
    )
    with op.batch_alter_table("help_queue", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_help_queue_channel_id"), ["channel_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_help_queue_status"), ["status"], unique=False)
    op.create_table(
        "question_followers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["interaction_id"], ["interactions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("interaction_id", "user_id", name="uq_question_follower"),
    )
    with op.batch_alter_table("question_followers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_question_followers_interaction_id"), ["interaction_id"], unique=False)
    with op.batch_alter_table("mentor_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thread_note_ts", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mentor_requests", schema=None) as batch_op:
        batch_op.drop_column("thread_note_ts")
    with op.batch_alter_table("question_followers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_question_followers_interaction_id"))
    op.drop_table("question_followers")
    with op.batch_alter_table("help_queue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_help_queue_status"))
        batch_op.drop_index(batch_op.f("ix_help_queue_channel_id"))
    op.drop_table("help_queue")
    op.drop_table("help_channels")
