"""Spare Slot For The Usability Work (jobs, Airlock, Models).

Revision ID: 0013
Revises: 0012
Kept in step by hand with the ORM models (a test compares them).
"""

from __future__ import annotations

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
