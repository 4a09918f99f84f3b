"""question receipts: a question's record is found by its message (a record spooled on the host while the
database was away, completed by its answer in any order), and an answer recorded and not yet posted is
marked until its post succeeded (the worker posts it when its process stopped in between)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 03:00:00
"""

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("interactions", sa.Column("receipt_key", sa.String(128), nullable=True))
    op.add_column(
        "interactions", sa.Column("unposted_since", assistant.db.models.UTCDateTime(timezone=True), nullable=True)
    )
    op.create_index("ix_interactions_receipt_key", "interactions", ["receipt_key"], unique=True)
    op.create_index("ix_interactions_unposted_since", "interactions", ["unposted_since"])


def downgrade() -> None:
    op.drop_index("ix_interactions_unposted_since", table_name="interactions")
    op.drop_index("ix_interactions_receipt_key", table_name="interactions")
    op.drop_column("interactions", "unposted_since")
    op.drop_column("interactions", "receipt_key")
