"""the admin web app: one-time Sign in with Slack states, and indexes its pages read by

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 02:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # slack_sdk's SQLAlchemyOAuthStateStore shape, a table of its own: a state issued to sign in is never an
    # install's, and the reverse.
    op.create_table(
        "web_signin_states",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("state", sa.String(200), nullable=False),
        sa.Column("expire_at", sa.DateTime(), nullable=False),
    )
    # The pages read one workspace's interactions of a period, and the hand-offs of those interactions.
    # (On PostgreSQL the index carries what the overview counts, so it is read without the table.)
    op.create_index(
        "ix_interactions_team_created",
        "interactions",
        ["team_id", "created_at"],
        postgresql_include=["outcome", "answered", "user_id"],
    )
    op.create_index("ix_mentor_requests_interaction", "mentor_requests", ["interaction_id"])
    op.create_index("ix_mentor_offers_team_offered", "mentor_offers", ["team_id", "offered_at"])


def downgrade() -> None:
    op.drop_index("ix_mentor_offers_team_offered", table_name="mentor_offers")
    op.drop_index("ix_mentor_requests_interaction", table_name="mentor_requests")
    op.drop_index("ix_interactions_team_created", table_name="interactions")
    op.drop_table("web_signin_states")
