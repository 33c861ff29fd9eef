"""Server processes and their heartbeats, so recovery touches only jobs of dead servers.

Revision ID: 0009
Revises: 0008
Kept in step by hand with ``countylab/storage/server_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lab_servers",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("host", sa.String(100), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("heartbeat_at", _TS, nullable=False),
        sa.Column("leading_since", _TS, nullable=True),
        sa.Column("stopped_at", _TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("lab_servers")
