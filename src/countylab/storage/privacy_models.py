"""ORM tables of the DP SQL gateway (数据黑匣): privacy budgets, their ledger, queries, answer cache.

Kept beside ``models.py`` (same ``Base``) and created by migration ``0004_privacy``.

* ``privacy_budgets``: one row per (project, dataset) with ``user_id = 0`` and, per analyst,
  one row per (project, dataset, user).  ``*_limit`` is the steward's cap (NULL: the grade's
  default cap); ``*_spent`` only ever grows, through one conditional UPDATE (see
  ``countylab.privacy.budget``), so concurrent queries cannot overspend.
* ``budget_entries``: the ledger itself — every charge and every limit change, append-only.
* ``query_runs``: every query asked through the gateway (answered, cached, refused, failed).
* ``query_answers``: the released noisy answer per (project, plan fingerprint); an identical
  repeated query gets this answer back at no cost.  A row whose answer is ``{"pending": true}``
  is a claim: the query that inserted it is running and identical queries wait for it.

Added by migration ``0006_dp_budgets``: each ledger row's renewal period and steward-approved
top-ups, the dataset-wide yearly ledger (``dataset_budgets``), top-up requests
(``budget_topups``) and the per-analyst daily query counter (``dp_daily_queries``).
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
    # the renewal period the spending belongs to; at period_end everything renews
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # extra budget a steward approved for this period only (reset at renewal)
    epsilon_topup: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    delta_topup: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class DatasetBudget(Base):
    """What every project together spent on one dataset in one calendar year (collusion cap)."""

    __tablename__ = "dataset_budgets"
    __table_args__ = (UniqueConstraint("dataset_id", "year", name="uq_dataset_budget"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    year: Mapped[int] = mapped_column(Integer)
    epsilon_spent: Mapped[float] = mapped_column(Float, default=0.0)
    delta_spent: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BudgetTopup(Base):
    """A project member's request for more budget this period; the steward approves or refuses."""

    __tablename__ = "budget_topups"
    __table_args__ = (Index("ix_budget_topups_status", "status", "created_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10))  # pending | approved | refused
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DailyQueries(Base):
    """Charged queries per analyst and UTC day, counted by a conditional UPDATE (the daily cap)."""

    __tablename__ = "dp_daily_queries"
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD (UTC)
    queries: Mapped[int] = mapped_column(Integer, default=0)


class BudgetEntry(Base):
    __tablename__ = "budget_entries"
    __table_args__ = (Index("ix_budget_entries_project", "project_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Integer, default=PROJECT_WIDE)  # whose ledger (0: project)
    kind: Mapped[str] = mapped_column(String(10))  # charge | limit | topup | renew
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
    mode: Mapped[str] = mapped_column(String(10))  # dp (older rows may say sdc)
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
