"""Catalog search: steward-extendable synonym groups.

Revision ID: 0011
Revises: 0010
Kept in step by hand with ``countylab/storage/search_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "search_synonyms",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("words", sa.JSON, nullable=False),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("search_synonyms")
