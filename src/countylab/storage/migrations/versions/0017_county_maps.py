"""County map boundaries (towns and villages) and point layers.

Revision ID: 0017
Revises: 0016
Kept in step by hand with ``countylab/storage/map_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "map_imports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("code_property", sa.String(64), nullable=False),
        sa.Column("features", sa.Integer, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "map_areas",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column(
            "import_id", sa.Integer, sa.ForeignKey("map_imports.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("geometry", sa.JSON, nullable=False),
        sa.Column("display", sa.JSON, nullable=False),
        sa.UniqueConstraint("level", "code", name="uq_map_area"),
    )
    op.create_index("ix_map_areas_import_id", "map_areas", ["import_id"])
    op.create_table(
        "map_points",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("layer", sa.String(64), nullable=False),
        sa.Column("point_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.UniqueConstraint("layer", "point_id", name="uq_map_point"),
    )


def downgrade() -> None:
    op.drop_table("map_points")
    op.drop_index("ix_map_areas_import_id", table_name="map_areas")
    op.drop_table("map_areas")
    op.drop_table("map_imports")
