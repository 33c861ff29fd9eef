"""The approval workflow (steps, deadlines, public notice, objections).

Revision ID: 0015
Revises: 0014
Kept in step by hand with ``countylab/storage/workflow_models.py`` (a test compares them).
"""

from __future__ import annotations

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
