"""What Changed Between Rounds Of A Release Request, And Replies To Checkers.

Revision ID: 0013
Revises: 0012
Kept in step by hand with ``countylab/storage/airlock_changes_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_round_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "request_id",
            sa.Integer,
            sa.ForeignKey("release_requests.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("replies", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request_id", "round", name="uq_release_round_change"),
    )
    op.create_index("ix_release_round_changes_request_id", "release_round_changes", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_release_round_changes_request_id", table_name="release_round_changes")
    op.drop_table("release_round_changes")
