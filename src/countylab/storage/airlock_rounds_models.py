"""ORM table of release request rounds (出域申请的轮次): one immutable record per submission.

Created by migration ``0007_release_rounds``.  A release request is bound to its job; each time
it is submitted (the first time, and after every return) a new round records the job, the
datasets, grade and review rule computed afresh from that job, the files with their SHA-256,
and — when the automatic checks have run — their results.  When the round closes (returned,
rejected, approved, withdrawn) its votes are copied in and it is never written again.  Votes of
one round never count in another (``release_votes.round``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base, utcnow


class ReleaseRound(Base):
    __tablename__ = "release_rounds"
    __table_args__ = (UniqueConstraint("request_id", "round", name="uq_release_round"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("release_requests.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    grade: Mapped[str] = mapped_column(String(20))
    checkers_needed: Mapped[int] = mapped_column(Integer)
    officer_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    datasets: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    selectors: Mapped[list[str]] = mapped_column(JSON, default=list)  # what the developer chose
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{name, sha256, bytes}]
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # per file, once run
    checks_status: Mapped[str | None] = mapped_column(String(10), nullable=True)
    votes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # copied when it closes
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    return_reason: Mapped[str] = mapped_column(Text, default="")
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
