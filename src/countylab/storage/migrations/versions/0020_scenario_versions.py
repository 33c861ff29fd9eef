"""Versions of a published scenario, and the scenario version an application was submitted under.

Revision ID: 0020
Revises: 0019
Kept in step by hand with ``countylab/storage/operations_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scenario_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "scenario_id", sa.Integer, sa.ForeignKey("scenarios.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("edited_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("edited_at", _TS, nullable=False),
        sa.UniqueConstraint("scenario_id", "version", name="uq_scenario_version"),
    )
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("scenario_version", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("scenario_version")
    op.drop_table("scenario_versions")
