"""daily roll-ups for the admin pages: per-day questions and content figures, the triggers that log changed days,
and an index for active askers

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 03:00:00
"""

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# A change to a past day (UTC) of a workspace is logged in rollup_changes by the database itself, whichever
# code path (or person with psql) made it: interactions inserted, updated (what the pages count) or deleted;
# votes cast, changed or removed (the day of their interaction); hand-offs made or removed (the day of the
# interaction handed off). The same trigger on interactions keeps workspace_askers: who has questions in the
# workspace (the overview's active askers are looked up person by person). Today's rows are not logged (no
# statement touches the log then): today is never rolled up, it is counted live.
POSTGRESQL = [
    """
    CREATE FUNCTION moment_rollup_mark(team varchar, at timestamptz) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF (at AT TIME ZONE 'UTC')::date < (now() AT TIME ZONE 'UTC')::date THEN
            INSERT INTO rollup_changes (team_id, day) VALUES (team, (at AT TIME ZONE 'UTC')::date);
        END IF;
    END $$
    """,
    """
    CREATE FUNCTION moment_rollup_mark_interaction(interaction integer) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE found_row record;
    BEGIN
        SELECT team_id, created_at INTO found_row FROM interactions WHERE id = interaction;
        IF FOUND THEN PERFORM moment_rollup_mark(found_row.team_id, found_row.created_at); END IF;
    END $$
    """,
    """
    CREATE FUNCTION moment_rollup_interactions() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            PERFORM moment_rollup_mark(OLD.team_id, OLD.created_at);
            DELETE FROM workspace_askers WHERE team_id = OLD.team_id AND user_id = OLD.user_id
                AND NOT EXISTS (SELECT 1 FROM interactions WHERE team_id = OLD.team_id AND user_id = OLD.user_id);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM moment_rollup_mark(NEW.team_id, NEW.created_at);
            INSERT INTO workspace_askers (team_id, user_id) VALUES (NEW.team_id, NEW.user_id) ON CONFLICT DO NOTHING;
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION moment_rollup_linked() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN PERFORM moment_rollup_mark_interaction(OLD.interaction_id); END IF;
        IF TG_OP <> 'DELETE' THEN PERFORM moment_rollup_mark_interaction(NEW.interaction_id); END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER rollup_interactions AFTER INSERT OR DELETE
    OR UPDATE OF created_at, team_id, user_id, outcome, answered
    ON interactions FOR EACH ROW EXECUTE PROCEDURE moment_rollup_interactions()
    """,
    """
    CREATE TRIGGER rollup_votes AFTER INSERT OR DELETE OR UPDATE OF interaction_id, helpful
    ON votes FOR EACH ROW EXECUTE PROCEDURE moment_rollup_linked()
    """,
    """
    CREATE TRIGGER rollup_mentor_requests AFTER INSERT OR DELETE OR UPDATE OF interaction_id
    ON mentor_requests FOR EACH ROW EXECUTE PROCEDURE moment_rollup_linked()
    """,
]


def _sqlite_triggers() -> list[str]:
    mark = "INSERT INTO rollup_changes (team_id, day) SELECT {team}, date({at}) WHERE date({at}) < date('now');"
    linked = (
        "INSERT INTO rollup_changes (team_id, day) SELECT team_id, date(created_at) FROM interactions "
        "WHERE id = {row}.interaction_id AND date(created_at) < date('now');"
    )
    interaction = {row: mark.format(team=f"{row}.team_id", at=f"{row}.created_at") for row in ("OLD", "NEW")}
    interaction["OLD"] += (
        " DELETE FROM workspace_askers WHERE team_id = OLD.team_id AND user_id = OLD.user_id AND NOT EXISTS"
        " (SELECT 1 FROM interactions WHERE team_id = OLD.team_id AND user_id = OLD.user_id);"
    )
    interaction["NEW"] += (
        " INSERT OR IGNORE INTO workspace_askers (team_id, user_id) VALUES (NEW.team_id, NEW.user_id);"
    )
    statements = []
    for table, columns, body in (
        ("interactions", "created_at, team_id, user_id, outcome, answered", interaction),
        ("votes", "interaction_id, helpful", {row: linked.format(row=row) for row in ("OLD", "NEW")}),
        ("mentor_requests", "interaction_id", {row: linked.format(row=row) for row in ("OLD", "NEW")}),
    ):
        statements += [
            f"CREATE TRIGGER rollup_{table}_insert AFTER INSERT ON {table} BEGIN {body['NEW']} END",
            f"CREATE TRIGGER rollup_{table}_delete AFTER DELETE ON {table} BEGIN {body['OLD']} END",
            f"CREATE TRIGGER rollup_{table}_update AFTER UPDATE OF {columns} ON {table} "
            f"BEGIN {body['OLD']} {body['NEW']} END",
        ]
    return statements


def upgrade() -> None:
    op.create_table(
        "daily_questions",
        sa.Column("team_id", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("questions", sa.Integer(), nullable=False),
        sa.Column("searched", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("votes", sa.Integer(), nullable=False),
        sa.Column("helpful", sa.Integer(), nullable=False),
    )
    op.create_table(
        "daily_content",
        sa.Column("team_id", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("path", sa.String(512), primary_key=True),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("shown", sa.Integer(), nullable=False),
        sa.Column("top", sa.Integer(), nullable=False),
        sa.Column("helpful", sa.Integer(), nullable=False),
        sa.Column("not_helpful", sa.Integer(), nullable=False),
        sa.Column("handoffs", sa.Integer(), nullable=False),
    )
    op.create_table(
        "rollup_state",
        sa.Column("team_id", sa.String(64), primary_key=True),
        sa.Column("through", sa.Date(), nullable=False),
        sa.Column("rolled_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "rollup_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
    )
    op.create_index("ix_rollup_changes_team_day", "rollup_changes", ["team_id", "day"])
    op.create_table(
        "workspace_askers",
        sa.Column("team_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
    )
    op.execute("INSERT INTO workspace_askers (team_id, user_id) SELECT DISTINCT team_id, user_id FROM interactions")
    # The overview's active askers: people one after the other along this index, each looked up by time.
    op.create_index(
        "ix_interactions_team_user",
        "interactions",
        ["team_id", "user_id", "created_at"],
        postgresql_include=["outcome"],
    )
    for statement in POSTGRESQL if op.get_bind().dialect.name == "postgresql" else _sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("interactions", "votes", "mentor_requests"):
            op.execute(f"DROP TRIGGER rollup_{table} ON {table}")
        for function in ("interactions()", "linked()", "mark_interaction(integer)", "mark(varchar, timestamptz)"):
            op.execute(f"DROP FUNCTION moment_rollup_{function}")
    else:
        for table in ("interactions", "votes", "mentor_requests"):
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER rollup_{table}_{event}")
    op.drop_index("ix_interactions_team_user", table_name="interactions")
    op.drop_index("ix_rollup_changes_team_day", table_name="rollup_changes")
    for table in ("workspace_askers", "rollup_changes", "rollup_state", "daily_content", "daily_questions"):
        op.drop_table(table)
