"""The public showcase: project stories and their charts, the gallery, retractions.

Revision ID: 0019
Revises: 0018
Kept in step by hand with ``countylab/storage/showcase_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "showcase_stories",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False, unique=True),
        sa.Column("scenario_id", sa.Integer, sa.ForeignKey("scenarios.id"), nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("organisation", sa.String(200), nullable=False),
        sa.Column("scenario_text", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("published_at", _TS, nullable=True),
    )
    op.create_table(
        "showcase_story_charts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "story_id",
            sa.Integer,
            sa.ForeignKey("showcase_stories.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("source_kind", sa.String(10), nullable=False),
        sa.Column("request_id", sa.Integer, sa.ForeignKey("release_requests.id"), nullable=True),
        sa.Column("file_id", sa.Integer, sa.ForeignKey("release_files.id"), nullable=True),
        sa.Column("query_id", sa.Integer, nullable=True),
        sa.Column("chart", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_showcase_story_charts_story", "showcase_story_charts", ["story_id", "position"])
    op.create_table(
        "showcase_gallery",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "request_id", sa.Integer, sa.ForeignKey("release_requests.id"), nullable=False, unique=True
        ),
        sa.Column("file_id", sa.Integer, sa.ForeignKey("release_files.id"), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("caption", sa.Text, nullable=False),
        sa.Column("chart", sa.JSON, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("added_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("added_at", _TS, nullable=False),
    )
    op.create_table(
        "showcase_retractions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "request_id", sa.Integer, sa.ForeignKey("release_requests.id"), nullable=False, unique=True
        ),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("retracted_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("retracted_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("showcase_retractions")
    op.drop_table("showcase_gallery")
    op.drop_index("ix_showcase_story_charts_story", table_name="showcase_story_charts")
    op.drop_table("showcase_story_charts")
    op.drop_table("showcase_stories")
