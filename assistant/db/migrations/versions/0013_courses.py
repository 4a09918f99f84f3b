"""courses: a catalogue of courses and learning paths, the questions that matched one, and suggestions

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 02:00:00
"""

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.String(64), nullable=False, index=True),
        sa.Column("activity_id", sa.String(1000), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("audience", sa.JSON(), nullable=True),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("embedding_model", sa.String(200), nullable=True),
        sa.Column("imported_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("team_id", "activity_id", name="uq_course_activity"),
    )
    op.create_index("ix_courses_team_url", "courses", ["team_id", "url"])
    op.create_table(
        "course_interests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("course_id", sa.Integer(), sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("cosine", sa.Float(), nullable=False),
        sa.Column("created_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_course_interests_person", "course_interests", ["team_id", "user_id", "course_id", "created_at"])
    op.create_table(
        "course_suggestions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.String(64), nullable=False, index=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("course_id", sa.Integer(), sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("surface", sa.String(32), nullable=False),
        sa.Column("created_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("clicked_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("dismissed_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("team_id", "user_id", "course_id", name="uq_course_suggestion_per_person"),
    )
    op.create_index("ix_course_suggestions_course", "course_suggestions", ["course_id"])


def downgrade() -> None:
    op.drop_table("course_suggestions")
    op.drop_table("course_interests")
    op.drop_table("courses")
