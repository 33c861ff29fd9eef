"""ORM tables of the approval workflow (steps, deadlines, public notice, objections), created by
migration ``0015_approval_workflow``.

* ``workflow_configs``: the county's versions of the approval configuration (which steps per
  grade and purpose, deadlines, experts, notice period).  Version 0 is the shipped default and
  is never stored; a row is never edited, a change adds the next version, so an application
  keeps the version it was submitted under (``approval_steps.config_version``).
* ``approval_steps``: one row per step of one review round of an application (材料预审, one 部门同意
  per owning department, 安全审查, 专家评审, 终审).  ``(application_id, round, kind, scope)`` is
  unique and ``version`` is bumped on every decision, so two reviewers deciding the same step
  at once cannot both win.
* ``approval_experts``: the experts the operator assigned to an expert-review step, and their votes.
* ``public_notices`` (公示) and ``objections`` (异议) filed against them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base, utcnow


class WorkflowConfig(Base):
    __tablename__ = "workflow_configs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    source: Mapped[str] = mapped_column(Text)  # the TOML text as the admin wrote it
    body: Mapped[dict[str, Any]] = mapped_column(JSON)  # the validated, parsed form
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApprovalStep(Base):
    __tablename__ = "approval_steps"
    __table_args__ = (
        UniqueConstraint("application_id", "round", "kind", "scope", name="uq_approval_step"),
        Index("ix_approval_steps_open", "status", "due_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)  # 1, then +1 after each return or upheld objection
    kind: Mapped[str] = mapped_column(String(20))  # precheck | consent | security | expert | final
    scope: Mapped[str] = mapped_column(String(40), default="")  # "org:<id>" for a department's consent
    org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"), nullable=True)
    stage: Mapped[int] = mapped_column(Integer, default=0)  # steps of one stage run in parallel
    status: Mapped[str] = mapped_column(String(20))  # waiting | open | approved | refused | returned | closed
    config_version: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # security terms, expert count
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class ApprovalExpert(Base):
    __tablename__ = "approval_experts"
    step_id: Mapped[int] = mapped_column(
        ForeignKey("approval_steps.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    assigned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decision: Mapped[str | None] = mapped_column(String(20), nullable=True)  # agree | disagree
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PublicNotice(Base):
    __tablename__ = "public_notices"
    __table_args__ = (Index("ix_public_notices_status", "status", "ends_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | ended | withdrawn
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Objection(Base):
    __tablename__ = "objections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("public_notices.id", ondelete="CASCADE"))
    filed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | dismissed | upheld
    answer: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(20), default="")  # "" | continue | in_review | rejected
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
