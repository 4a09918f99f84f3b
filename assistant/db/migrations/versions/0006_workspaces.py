"""workspaces: every workspace-owned record carries its team id (and enterprise id where it helps)

Existing rows all belong to the one workspace Moment served so far: they become the default workspace's
(`MOMENT_DEFAULT_TEAM_ID`, handed to the migration by `Database.upgrade`; `default` when unset). Mentors
and help channels are keyed by workspace and Slack id from now on.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 23:50:00
"""

import warnings

import sqlalchemy as sa
from alembic import context, op

import assistant.db.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Tables whose rows belong to one workspace: (table, also an enterprise id column)
OWNED = [
    ("interactions", True),
    ("votes", False),
    ("mentors", False),
    ("mentor_requests", True),
    ("mentor_offers", False),
    ("drafts", False),
    ("audit_events", True),
    ("xapi_statements", False),
    ("help_channels", False),
    ("help_queue", False),
    ("question_followers", False),
]
HAD_TEAM_ID = ("interactions", "mentor_requests", "help_queue")


def upgrade() -> None:
    default = context.config.attributes.get("default_team_id") or "default"
    op.create_table(
        "workspaces",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("enterprise_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("content_folder", sa.String(length=512), nullable=True),
        sa.Column("admins", sa.JSON(), nullable=False),
        sa.Column("installed_by", sa.String(length=64), nullable=True),
        sa.Column("installed_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("uninstalled_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("team_id"),
    )
    for table, enterprise in OWNED:
        if table not in HAD_TEAM_ID:
            with op.batch_alter_table(table) as batch_op:
                batch_op.add_column(sa.Column("team_id", sa.String(length=64), nullable=True))
        if enterprise:
            with op.batch_alter_table(table) as batch_op:
                batch_op.add_column(sa.Column("enterprise_id", sa.String(length=64), nullable=True))
        # Everything so far was the one workspace's (interactions kept Slack's id for it: now the default).
        op.execute(sa.text(f"UPDATE {table} SET team_id = :team").bindparams(team=default))
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("team_id", existing_type=sa.String(length=64), nullable=False)
            if table not in ("mentors", "help_channels"):
                batch_op.create_index(f"ix_{table}_team_id", ["team_id"], unique=False)
    _rekey("mentors", ["team_id", "slack_id"], ["slack_id"])
    _rekey("help_channels", ["team_id", "channel_id"], ["channel_id"])
    with op.batch_alter_table("help_queue") as batch_op:
        batch_op.drop_constraint("uq_help_queue_message", type_="unique")
        batch_op.create_unique_constraint("uq_help_queue_message", ["team_id", "channel_id", "message_ts"])


def _rekey(table: str, columns: list[str], old: list[str]) -> None:
    """Make `columns` the table's primary key (it was `old`)."""
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.create_primary_key(f"{table}_pkey", table, columns)
        return
    # SQLite can't alter a primary key: the table is copied (SQLAlchemy warns that the copy's key differs
    # from the reflected one, which is the point).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*specifies columns .* as primary_key=True")
        with op.batch_alter_table(table, recreate="always") as batch_op:
            batch_op.create_primary_key(f"{table}_pkey", columns)


def downgrade() -> None:
    with op.batch_alter_table("help_queue") as batch_op:
        batch_op.drop_constraint("uq_help_queue_message", type_="unique")
        batch_op.create_unique_constraint("uq_help_queue_message", ["channel_id", "message_ts"])
    _rekey("help_channels", ["channel_id"], ["team_id", "channel_id"])
    _rekey("mentors", ["slack_id"], ["team_id", "slack_id"])
    for table, enterprise in reversed(OWNED):
        with op.batch_alter_table(table) as batch_op:
            if table not in ("mentors", "help_channels"):
                batch_op.drop_index(f"ix_{table}_team_id")
            if enterprise:
                batch_op.drop_column("enterprise_id")
            if table in HAD_TEAM_ID:
                batch_op.alter_column("team_id", existing_type=sa.String(length=64), nullable=True)
            else:
                batch_op.drop_column("team_id")
    op.drop_table("workspaces")
