"""Compute center: jobs, job attempts, usage records, project quotas.

Revision ID: 0003
Revises: 0002
Kept in step by hand with ``countylab/storage/jobs_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("submitted_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("spec_yaml", sa.Text, nullable=False),
        sa.Column("code_path", sa.String(500), nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("code_bytes", sa.BigInteger, nullable=False),
        sa.Column("cpu_seconds_reserved", sa.Float, nullable=False),
        sa.Column("gpu_seconds_reserved", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lost_count", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("worker_id", sa.String(100), nullable=True),
        sa.Column("heartbeat_at", _TS, nullable=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("queued_at", _TS, nullable=True),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
    )
    op.create_index("ix_jobs_queue", "jobs", ["state", "priority", "queued_at"])
    op.create_index("ix_jobs_project", "jobs", ["project_id", "created_at"])
    op.create_table(
        "job_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("worker_id", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("outbox_path", sa.String(500), nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.UniqueConstraint("job_id", "number", name="uq_job_attempt_number"),
    )
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("attempt_id", sa.Integer, sa.ForeignKey("job_attempts.id"), nullable=False, unique=True),
        sa.Column("cpu_s", sa.Float, nullable=False),
        sa.Column("wall_s", sa.Float, nullable=False),
        sa.Column("max_rss_mb", sa.Float, nullable=False),
        sa.Column("gpu_s", sa.Float, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
    )
    op.create_index("ix_usage_project_time", "usage_records", ["project_id", "recorded_at"])
    op.create_table(
        "project_quotas",
        sa.Column(
            "project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("max_cpu", sa.Float, nullable=False),
        sa.Column("max_memory_mb", sa.Integer, nullable=False),
        sa.Column("max_time_s", sa.Integer, nullable=False),
        sa.Column("max_gpu", sa.Integer, nullable=False),
        sa.Column("cpu_seconds", sa.Float, nullable=True),
        sa.Column("gpu_seconds", sa.Float, nullable=True),
        sa.Column("concurrent_jobs", sa.Integer, nullable=False),
        sa.Column("period_days", sa.Integer, nullable=False),
        sa.Column("updated_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("project_quotas")
    op.drop_index("ix_usage_project_time", table_name="usage_records")
    op.drop_table("usage_records")
    op.drop_table("job_attempts")
    op.drop_index("ix_jobs_project", table_name="jobs")
    op.drop_index("ix_jobs_queue", table_name="jobs")
    op.drop_table("jobs")
