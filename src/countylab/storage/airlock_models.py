"""ORM tables of the airlock (出域审核) and the model registry (模型不出域).

Created by migration ``0005_airlock``.  A release request's files are *copies* taken from the
job's outbox when the request is made (``stored_path``, ``sha256``), so a later change to the
outbox cannot alter what the checkers reviewed.  Votes carry the review ``round``: a request
returned and resubmitted is reviewed afresh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base, utcnow


class ReleaseRequest(Base):
    __tablename__ = "release_requests"
    __table_args__ = (Index("ix_release_requests_project", "project_id", "created_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(20), default="draft")
    grade: Mapped[str] = mapped_column(String(20))
    checkers_needed: Mapped[int] = mapped_column(Integer, default=1)
    officer_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    round: Mapped[int] = mapped_column(Integer, default=1)
    checks_status: Mapped[str | None] = mapped_column(String(10), nullable=True)  # pass | warn | fail
    datasets: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{id, name, version}]
    return_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReleaseFile(Base):
    __tablename__ = "release_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("release_requests.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))  # path inside the outbox
    description: Mapped[str] = mapped_column(Text, default="")
    controls: Mapped[str] = mapped_column(Text, default="")  # disclosure controls the developer applied
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # count/magnitude columns, filter
    stored_path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    kind: Mapped[str | None] = mapped_column(String(10), nullable=True)  # after the file type check
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    check_status: Mapped[str | None] = mapped_column(String(10), nullable=True)
    ledger_risks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    released_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    released_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    released_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ReleaseVote(Base):
    __tablename__ = "release_votes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("release_requests.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer, default=1)
    voter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(20))  # checker | security_officer
    choice: Mapped[str] = mapped_column(String(10))  # approve | reject | return
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReleaseComment(Base):
    __tablename__ = "release_comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("release_requests.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("release_files.id"), nullable=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LedgerTable(Base):
    """A released frequency table (the cross-project differencing ledger)."""

    __tablename__ = "release_ledger"
    __table_args__ = (Index("ix_release_ledger_dataset", "dataset_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("release_requests.id"))
    file_id: Mapped[int] = mapped_column(ForeignKey("release_files.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    dataset_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    grouping: Mapped[list[str]] = mapped_column(JSON, default=list)
    filter_description: Mapped[str] = mapped_column(Text, default="")
    cells: Mapped[list[list[Any]]] = mapped_column(JSON, default=list)  # [[key..., count]]
    released_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RegisteredModel(Base):
    __tablename__ = "registered_models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    name: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str] = mapped_column(String(500))
    format: Mapped[str] = mapped_column(String(20))  # joblib | pickle | onnx | pytorch
    stored_path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending | approved | rejected
    rate_per_minute: Mapped[int] = mapped_column(Integer, default=30)
    daily_quota: Mapped[int] = mapped_column(Integer, default=1000)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_note: Mapped[str] = mapped_column(Text, default="")


class ModelCall(Base):
    """One prediction call: the basis of per-caller rate limits and daily quotas."""

    __tablename__ = "model_calls"
    __table_args__ = (Index("ix_model_calls_caller", "model_id", "caller", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    caller: Mapped[str] = mapped_column(String(100))  # "user:<id>" (later "product-key:<id>")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
