"""Release request rounds: one immutable record per submission of a release request (job,
grade, review rule, datasets, files with SHA-256, check results, votes).

Revision ID: 0007
Revises: 0006
Kept in step by hand with ``countylab/storage/airlock_rounds_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "release_rounds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "request_id",
            sa.Integer,
            sa.ForeignKey("release_requests.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("grade", sa.String(20), nullable=False),
        sa.Column("checkers_needed", sa.Integer, nullable=False),
        sa.Column("officer_needed", sa.Boolean, nullable=False),
        sa.Column("datasets", sa.JSON, nullable=False),
        sa.Column("selectors", sa.JSON, nullable=False),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("checks", sa.JSON, nullable=False),
        sa.Column("checks_status", sa.String(10), nullable=True),
        sa.Column("votes", sa.JSON, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("return_reason", sa.Text, nullable=False),
        sa.Column("submitted_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("submitted_at", _TS, nullable=False),
        sa.Column("checked_at", _TS, nullable=True),
        sa.Column("closed_at", _TS, nullable=True),
        sa.UniqueConstraint("request_id", "round", name="uq_release_round"),
    )
    op.create_index("ix_release_rounds_request_id", "release_rounds", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_release_rounds_request_id", table_name="release_rounds")
    op.drop_table("release_rounds")
