"""Display names of public key-set codes (town code -> 城关镇), shown in DP answers at no cost.

Revision ID: 0010
Revises: 0009
Kept in step by hand with ``countylab/storage/catalog_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("key_sets") as batch:
        batch.add_column(sa.Column("labels", sa.JSON, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("key_sets") as batch:
        batch.drop_column("labels")
