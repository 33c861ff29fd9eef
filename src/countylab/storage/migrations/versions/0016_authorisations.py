"""Agreements, signatures and authorisations.

Revision ID: 0016
Revises: 0015
Kept in step by hand with ``countylab/storage/authorisation_models.py`` (a test compares them).
"""

from __future__ import annotations

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
