"""ORM tables of the DP SQL gateway (数据黑匣): privacy budgets, their ledger, queries, answer cache.

Kept beside ``models.py`` (same ``Base``) and created by migration ``0004_privacy``.

* ``privacy_budgets``: one row per (project, dataset) with ``user_id = 0`` and, per analyst,
  one row per (project, dataset, user).  ``*_limit`` is the steward's cap (NULL: the grade's
  default cap); ``*_spent`` only ever grows, through one conditional UPDATE (see
  ``countylab.privacy.budget``), so concurrent queries cannot overspend.
* ``budget_entries``: the ledger itself — every charge and every limit change, append-only.
* ``query_runs``: every query asked through the gateway (answered, cached, refused, failed).
* ``query_answers``: the released noisy answer per (project, plan fingerprint); an identical
  repeated query gets this answer back at no cost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
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

PROJECT_WIDE = 0  # user_id of the (project, dataset) ledger row


class PrivacyBudget(Base):
    __tablename__ = "privacy_budgets"
    __table_args__ = (UniqueConstraint("project_id", "dataset_id", "user_id", name="uq_privacy_budget"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Integer, default=PROJECT_WIDE)  # 0: the whole project
    epsilon_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    delta_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    epsilon_spent: Mapped[float] = mapped_column(Float, default=0.0)
    delta_spent: Mapped[float] = mapped_column(Float, default=0.0)
    set_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BudgetEntry(Base):
    __tablename__ = "budget_entries"
    __table_args__ = (Index("ix_budget_entries_project", "project_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Integer, default=PROJECT_WIDE)  # whose ledger (0: project)
    kind: Mapped[str] = mapped_column(String(10))  # charge | limit
    epsilon: Mapped[float | None] = mapped_column(Float, nullable=True)
    delta: Mapped[float | None] = mapped_column(Float, nullable=True)
    query_id: Mapped[int | None] = mapped_column(ForeignKey("query_runs.id"), nullable=True)
    by_user: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QueryRun(Base):
    __tablename__ = "query_runs"
    __table_args__ = (Index("ix_query_runs_project", "project_id", "created_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    username: Mapped[str] = mapped_column(String(64))
    sql: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(10))  # dp | sdc
    epsilon: Mapped[float] = mapped_column(Float, default=0.0)  # asked for
    delta: Mapped[float] = mapped_column(Float, default=0.0)
    epsilon_spent: Mapped[float] = mapped_column(Float, default=0.0)
    delta_spent: Mapped[float] = mapped_column(Float, default=0.0)
    datasets: Mapped[list[str]] = mapped_column(JSON, default=list)  # "residents@v2"
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(12))  # running | answered | cached | refused | failed
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    suppressed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CachedAnswer(Base):
    __tablename__ = "query_answers"
    __table_args__ = (UniqueConstraint("project_id", "fingerprint", name="uq_query_answer"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    query_id: Mapped[int | None] = mapped_column(ForeignKey("query_runs.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
