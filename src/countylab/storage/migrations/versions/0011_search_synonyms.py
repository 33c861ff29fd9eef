"""Catalog Search: Steward-extendable Synonym List.

Revision ID: 0011
Revises: 0010
Kept in step by hand with the ORM models (a test compares them).
"""

from __future__ import annotations

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
