"""ORM tables of the data operations platform (数据运营服务平台), part 1, created by migration
``0014_operations``: the scenario list, the capability list, data-use applications and the
accreditation of safe people.

* ``scenarios`` (场景清单 / 机会清单): a problem a department wants solved, with the datasets it
  offers (``scenario_datasets``), an application window and a visibility.  A developer's own
  proposal is a scenario in state ``proposed`` until the operator accepts it.
* ``capabilities`` (能力清单): what an enterprise or research institute can offer, so the
  operator can pair demand with supply.
* ``scenario_subscriptions``: a user who wants to hear of new scenarios in a field.
* ``applications`` (用数申请): an organisation's request to use datasets for a scenario, with its
  datasets and columns (``application_datasets``), team (``application_members``) and PDF
  attachments (``application_attachments``).  ``status`` follows
  :data:`countylab.operations.states.APPLICATION_TRANSITIONS`; ``version`` is bumped on every
  change so that two reviewers acting on the same state cannot both win.
* ``accreditations`` (培训合格): a person's training record with its expiry date, entered by the
  operator; members of an authorised project must hold a current one.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base, utcnow


class Scenario(Base):
    __tablename__ = "scenarios"
    __table_args__ = (Index("ix_scenarios_status", "status", "visibility"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    problem: Mapped[str] = mapped_column(Text, default="")
    expected_outcome: Mapped[str] = mapped_column(Text, default="")
    field: Mapped[str] = mapped_column(String(40), default="")  # 领域: elderly_care, agriculture, …
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))  # the owning department
    visibility: Mapped[str] = mapped_column(String(10), default="public")  # public | internal
    status: Mapped[str] = mapped_column(String(20), default="collecting")  # ScenarioStatus
    apply_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    apply_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    proposed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)  # a proposal
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status_reason: Mapped[str] = mapped_column(Text, default="")


class ScenarioVersion(Base):
    """One version of a published scenario's text and offer (migration ``0020``): who changed it,
    when and why.  Version 1 is the scenario as published, written when it is first edited."""

    __tablename__ = "scenario_versions"
    __table_args__ = (UniqueConstraint("scenario_id", "version", name="uq_scenario_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)  # title, problem, …, offers
    reason: Mapped[str] = mapped_column(Text, default="")
    edited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    edited_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScenarioDataset(Base):
    """A dataset a scenario offers; ``columns`` None offers every column."""

    __tablename__ = "scenario_datasets"
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id", ondelete="CASCADE"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    columns: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


class Capability(Base):
    __tablename__ = "capabilities"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))  # an enterprise or research institute
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    field: Mapped[str] = mapped_column(String(40), default="")
    visibility: Mapped[str] = mapped_column(String(10), default="public")
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | closed
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScenarioSubscription(Base):
    __tablename__ = "scenario_subscriptions"
    __table_args__ = (UniqueConstraint("user_id", "field", name="uq_scenario_subscription"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(40))  # "" = every field
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Application(Base):
    __tablename__ = "applications"
    __table_args__ = (Index("ix_applications_status", "status", "updated_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)  # SQ-2026-0001
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))  # the applying organisation
    applicant_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(20))  # public_good (公共治理/公益) | industry (产业/行业)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)  # dp_query | sandbox_job | model_serving
    starts_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    expected_outputs: Mapped[str] = mapped_column(Text, default="")
    commitments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # 承诺书: items agreed, by whom
    status: Mapped[str] = mapped_column(String(20), default="draft")  # ApplicationStatus
    status_reason: Mapped[str] = mapped_column(Text, default="")  # the last return / refusal, in words
    renewal_of: Mapped[int | None] = mapped_column(ForeignKey("applications.id"), nullable=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every change (one winner)
    #: the scenario version (``scenario_versions``) whose offer the application was first submitted under
    scenario_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApplicationDataset(Base):
    """A dataset an application asks for; ``columns`` None asks for every column offered."""

    __tablename__ = "application_datasets"
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True
    )
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    columns: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class ApplicationMember(Base):
    __tablename__ = "application_members"
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), default="member")  # owner | member


class ApplicationAttachment(Base):
    __tablename__ = "application_attachments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    stored_as: Mapped[str] = mapped_column(String(300))  # path under the lab's data folder
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Accreditation(Base):
    __tablename__ = "accreditations"
    __table_args__ = (Index("ix_accreditations_user", "user_id", "expires_on"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    course: Mapped[str] = mapped_column(String(200))  # 数据安全培训 …
    certificate_no: Mapped[str] = mapped_column(String(60), default="")
    passed_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
