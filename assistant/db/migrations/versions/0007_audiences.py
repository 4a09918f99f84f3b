"""content audiences: the user-group cache, and the audience of each source shown

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 23:00:00
"""

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usergroups",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("handle", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "group_id"),
    )
    op.create_table(
        "usergroup_members",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "group_id", "user_id"),
    )
    with op.batch_alter_table("usergroup_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usergroup_members_user_id"), ["user_id"], unique=False)
    op.create_table(
        "usergroup_syncs",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("synced_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempted_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("team_id"),
    )
    with op.batch_alter_table("interaction_sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audience", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interaction_sources", schema=None) as batch_op:
        batch_op.drop_column("audience")
    op.drop_table("usergroup_syncs")
    with op.batch_alter_table("usergroup_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usergroup_members_user_id"))
    op.drop_table("usergroup_members")
    op.drop_table("usergroups")
