"""Dashboards, their widgets, the showcase budget's cached DP metrics and publication approvals.

Revision ID: 0018
Revises: 0017
Kept in step by hand with ``countylab/storage/dashboard_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dashboards",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("data_version", sa.Integer, nullable=False),
        sa.Column("published_version", sa.Integer, nullable=True),
        sa.Column("published_at", _TS, nullable=True),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "dashboard_widgets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "dashboard_id", sa.Integer, sa.ForeignKey("dashboards.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(40), nullable=False),
        sa.Column("source_kind", sa.String(10), nullable=False),
        sa.Column("source", sa.JSON, nullable=False),
        sa.Column("chart", sa.JSON, nullable=True),
        sa.Column("rendered_at", _TS, nullable=True),
    )
    op.create_index("ix_dashboard_widgets_dashboard", "dashboard_widgets", ["dashboard_id", "position"])
    op.create_table(
        "showcase_metrics",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("sql", sa.Text, nullable=False),
        sa.Column("epsilon", sa.Float, nullable=False),
        sa.Column("schedule", sa.String(10), nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("refreshed_at", _TS, nullable=True),
        sa.Column("tried_at", _TS, nullable=True),
        sa.Column("stale", sa.Boolean, nullable=False),
        sa.Column("stale_reason", sa.Text, nullable=False),
        sa.Column("stale_reason_en", sa.Text, nullable=False),
        sa.Column("query_id", sa.Integer, nullable=True),
        sa.Column("epsilon_spent", sa.Float, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "dashboard_approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "dashboard_id", sa.Integer, sa.ForeignKey("dashboards.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("numbers", sa.JSON, nullable=False),
        sa.Column("widgets", sa.JSON, nullable=False),
        sa.Column("requested_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("requested_at", _TS, nullable=False),
        sa.Column("decided_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("comment", sa.Text, nullable=False),
    )
    op.create_index("ix_dashboard_approvals_dashboard", "dashboard_approvals", ["dashboard_id", "state"])
    op.create_table(
        "big_screens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("dashboard_ids", sa.JSON, nullable=False),
        sa.Column("seconds", sa.Integer, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("big_screens")
    op.drop_index("ix_dashboard_approvals_dashboard", table_name="dashboard_approvals")
    op.drop_table("dashboard_approvals")
    op.drop_table("showcase_metrics")
    op.drop_index("ix_dashboard_widgets_dashboard", table_name="dashboard_widgets")
    op.drop_table("dashboard_widgets")
    op.drop_table("dashboards")
