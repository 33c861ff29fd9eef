"""DP budgets that fit real projects: renewal periods and top-ups on every ledger row, the
dataset-wide yearly ledger, top-up requests and the per-analyst daily query counter.

Revision ID: 0006
Revises: 0005
Kept in step by hand with ``countylab/storage/privacy_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("privacy_budgets") as batch:
        batch.add_column(sa.Column("period_start", _TS, nullable=True))
        batch.add_column(sa.Column("period_end", _TS, nullable=True))
        batch.add_column(sa.Column("epsilon_topup", sa.Float, nullable=False, server_default="0"))
        batch.add_column(sa.Column("delta_topup", sa.Float, nullable=False, server_default="0"))
    op.create_table(
        "dataset_budgets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("epsilon_spent", sa.Float, nullable=False),
        sa.Column("delta_spent", sa.Float, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("dataset_id", "year", name="uq_dataset_budget"),
    )
    op.create_table(
        "budget_topups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("requested_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("epsilon", sa.Float, nullable=False),
        sa.Column("delta", sa.Float, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("decided_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("decision_note", sa.Text, nullable=False),
        sa.Column("period_end", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("decided_at", _TS, nullable=True),
    )
    op.create_index("ix_budget_topups_status", "budget_topups", ["status", "created_at"])
    op.create_table(
        "dp_daily_queries",
        sa.Column("user_id", sa.Integer, primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("queries", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dp_daily_queries")
    op.drop_index("ix_budget_topups_status", table_name="budget_topups")
    op.drop_table("budget_topups")
    op.drop_table("dataset_budgets")
    with op.batch_alter_table("privacy_budgets") as batch:
        batch.drop_column("delta_topup")
        batch.drop_column("epsilon_topup")
        batch.drop_column("period_end")
        batch.drop_column("period_start")
