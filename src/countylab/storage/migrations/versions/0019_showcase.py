"""The public showcase (project stories).

Revision ID: 0019
Revises: 0018
Kept in step by hand with ``countylab/storage/showcase_models.py`` (a test compares them).
"""

from __future__ import annotations

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
