"""ORM tables of the compute center (算力中心): jobs, their attempts, metering and quotas.

Kept beside ``models.py`` (same ``Base``) and created by migration ``0003_jobs``.  The queue
lives in ``jobs``: workers claim a row with a compare-and-set UPDATE on ``state``, so no
locking protocol beyond the database's own row atomicity is needed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base, utcnow


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_queue", "state", "priority", "queued_at"),
        Index("ix_jobs_project", "project_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(20), default="pending")
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher runs first
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # JobSpec.to_dict()
    spec_yaml: Mapped[str] = mapped_column(Text, default="")
    code_path: Mapped[str] = mapped_column(String(500))
    code_sha256: Mapped[str] = mapped_column(String(64))
    code_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    cpu_seconds_reserved: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_seconds_reserved: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # number of the latest attempt
    lost_count: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class JobAttempt(Base):
    """One run of a job on one worker; its actions' results are kept as JSON."""

    __tablename__ = "job_attempts"
    __table_args__ = (UniqueConstraint("job_id", "number", name="uq_job_attempt_number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default="running")
    outbox_path: Mapped[str] = mapped_column(String(500), default="")
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class UsageRecord(Base):
    """What one attempt consumed; the basis of fair sharing, quota and (later) billing."""

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_project_time", "project_id", "recorded_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    attempt_id: Mapped[int] = mapped_column(ForeignKey("job_attempts.id"), unique=True)  # metered once
    cpu_s: Mapped[float] = mapped_column(Float, default=0.0)
    wall_s: Mapped[float] = mapped_column(Float, default=0.0)
    max_rss_mb: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_s: Mapped[float] = mapped_column(Float, default=0.0)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProjectQuota(Base):
    """A project's compute quota; projects without a row get the lab's default quota."""

    __tablename__ = "project_quotas"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    max_cpu: Mapped[float] = mapped_column(Float)
    max_memory_mb: Mapped[int] = mapped_column(Integer)
    max_time_s: Mapped[int] = mapped_column(Integer)
    max_gpu: Mapped[int] = mapped_column(Integer)
    cpu_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)  # per period; None: unlimited
    gpu_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    concurrent_jobs: Mapped[int] = mapped_column(Integer)
    period_days: Mapped[int] = mapped_column(Integer, default=30)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
