"""DP SQL gateway: privacy budgets and their ledger, query log, answer cache.

Revision ID: 0004
Revises: 0003
Kept in step by hand with ``countylab/storage/privacy_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "privacy_budgets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("epsilon_limit", sa.Float, nullable=True),
        sa.Column("delta_limit", sa.Float, nullable=True),
        sa.Column("epsilon_spent", sa.Float, nullable=False),
        sa.Column("delta_spent", sa.Float, nullable=False),
        sa.Column("set_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("project_id", "dataset_id", "user_id", name="uq_privacy_budget"),
    )
    op.create_table(
        "query_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("sql", sa.Text, nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("epsilon", sa.Float, nullable=False),
        sa.Column("delta", sa.Float, nullable=False),
        sa.Column("epsilon_spent", sa.Float, nullable=False),
        sa.Column("delta_spent", sa.Float, nullable=False),
        sa.Column("datasets", sa.JSON, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("suppressed", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
    )
    op.create_index("ix_query_runs_project", "query_runs", ["project_id", "created_at"])
    op.create_table(
        "budget_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("epsilon", sa.Float, nullable=True),
        sa.Column("delta", sa.Float, nullable=True),
        sa.Column("query_id", sa.Integer, sa.ForeignKey("query_runs.id"), nullable=True),
        sa.Column("by_user", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_budget_entries_project", "budget_entries", ["project_id", "at"])
    op.create_table(
        "query_answers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("answer", sa.JSON, nullable=False),
        sa.Column("query_id", sa.Integer, sa.ForeignKey("query_runs.id"), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("project_id", "fingerprint", name="uq_query_answer"),
    )


def downgrade() -> None:
    op.drop_table("query_answers")
    op.drop_index("ix_budget_entries_project", table_name="budget_entries")
    op.drop_table("budget_entries")
    op.drop_index("ix_query_runs_project", table_name="query_runs")
    op.drop_table("query_runs")
    op.drop_table("privacy_budgets")
