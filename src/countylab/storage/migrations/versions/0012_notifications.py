"""Notifications And To-do Items For Every Role.

Revision ID: 0012
Revises: 0011
Kept in step by hand with the ORM models (a test compares them).
"""

from __future__ import annotations

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
