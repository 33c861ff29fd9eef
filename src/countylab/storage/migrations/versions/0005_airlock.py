"""Airlock and model registry: release requests, files, votes, comments, the release ledger,
registered models and prediction calls.

Revision ID: 0005
Revises: 0004
Kept in step by hand with ``countylab/storage/airlock_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "release_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("grade", sa.String(20), nullable=False),
        sa.Column("checkers_needed", sa.Integer, nullable=False),
        sa.Column("officer_needed", sa.Boolean, nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("checks_status", sa.String(10), nullable=True),
        sa.Column("datasets", sa.JSON, nullable=False),
        sa.Column("return_reason", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("submitted_at", _TS, nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("released_at", _TS, nullable=True),
    )
    op.create_index("ix_release_requests_project", "release_requests", ["project_id", "created_at"])
    op.create_table(
        "release_files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "request_id", sa.Integer, sa.ForeignKey("release_requests.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("controls", sa.Text, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("stored_path", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(10), nullable=True),
        sa.Column("checks", sa.JSON, nullable=False),
        sa.Column("check_status", sa.String(10), nullable=True),
        sa.Column("ledger_risks", sa.JSON, nullable=False),
        sa.Column("released_path", sa.String(500), nullable=True),
        sa.Column("released_sha256", sa.String(64), nullable=True),
        sa.Column("released_bytes", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_release_files_request_id", "release_files", ["request_id"])
    op.create_table(
        "release_votes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "request_id", sa.Integer, sa.ForeignKey("release_requests.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("voter_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("choice", sa.String(10), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_release_votes_request_id", "release_votes", ["request_id"])
    op.create_table(
        "release_comments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "request_id", sa.Integer, sa.ForeignKey("release_requests.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("file_id", sa.Integer, sa.ForeignKey("release_files.id"), nullable=True),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_release_comments_request_id", "release_comments", ["request_id"])
    op.create_table(
        "release_ledger",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer, sa.ForeignKey("release_requests.id"), nullable=False),
        sa.Column("file_id", sa.Integer, sa.ForeignKey("release_files.id"), nullable=False),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("dataset_version", sa.Integer, nullable=True),
        sa.Column("grouping", sa.JSON, nullable=False),
        sa.Column("filter_description", sa.Text, nullable=False),
        sa.Column("cells", sa.JSON, nullable=False),
        sa.Column("released_at", _TS, nullable=False),
    )
    op.create_index("ix_release_ledger_dataset", "release_ledger", ["dataset_id"])
    op.create_table(
        "registered_models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("stored_path", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("card", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("rate_per_minute", sa.Integer, nullable=False),
        sa.Column("daily_quota", sa.Integer, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("decided_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("decision_note", sa.Text, nullable=False),
    )
    op.create_index("ix_registered_models_project_id", "registered_models", ["project_id"])
    op.create_table(
        "model_calls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "model_id", sa.Integer, sa.ForeignKey("registered_models.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("caller", sa.String(100), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
    )
    op.create_index("ix_model_calls_caller", "model_calls", ["model_id", "caller", "at"])


def downgrade() -> None:
    for table in (
        "model_calls",
        "registered_models",
        "release_ledger",
        "release_comments",
        "release_votes",
        "release_files",
        "release_requests",
    ):
        op.drop_table(table)
