"""ORM tables of agreements, signatures and authorisations, created by migration
``0016_authorisations``.

* ``agreements`` (授权协议): one row per version of an application's agreement.  The PDF bytes are
  stored with their SHA-256 once and never change: a change is a new version (the old one stays,
  ``superseded``), and every signature is asked again.
* ``agreement_signatures``: one per party (``applicant`` | ``platform``) per version; the hash is
  the one of the exact bytes the signer saw.
* ``agreement_attachments``: the scanned, stamped copy (PDF or image), kept with its SHA-256.
* ``authorisations`` (授权备案): what took effect when the second signature landed: the project,
  its term and its state (active | suspended | revoked | expired).  A renewal extends the row.
* ``authorisation_events``: every change of an authorisation (took effect, extended, suspended,
  resumed, revoked, expired) with its reason, for the disclosure report.
* ``authorisation_reminders``: reminders sent before the end date, one per (end date, days ahead),
  so a restart never sends one twice.
* ``grant_terms``: what a grant may be used for (channels, columns), why it exists (an
  authorisation, an emergency grant with its reason, a system-internal grant) and until when.  A
  grant without a row (made before this table) keeps every channel and column.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base, utcnow


class Agreement(Base):
    __tablename__ = "agreements"
    __table_args__ = (UniqueConstraint("application_id", "version", name="uq_agreement_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(40))  # XY-SQ-2026-0001-v1
    status: Mapped[str] = mapped_column(String(20), default="signing")  # signing | signed | superseded
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)  # the approved terms it prints
    extra_clauses: Mapped[str] = mapped_column(Text, default="")  # 补充条款 the operator added
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    drafted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    drafted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AgreementSignature(Base):
    __tablename__ = "agreement_signatures"
    __table_args__ = (UniqueConstraint("agreement_id", "party", name="uq_agreement_party"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id", ondelete="CASCADE"))
    party: Mapped[str] = mapped_column(String(20))  # applicant | platform
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"), nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgreementAttachment(Base):
    __tablename__ = "agreement_attachments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(60))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Authorisation(Base):
    __tablename__ = "authorisations"
    __table_args__ = (Index("ix_authorisations_status", "status", "ends_on"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), unique=True)  # the first
    latest_application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))  # renewals
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"))  # the last signed one
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id"))
    purpose: Mapped[str] = mapped_column(String(20))
    channels: Mapped[list[str]] = mapped_column(JSON)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active|suspended|revoked|expired
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuthorisationEvent(Base):
    __tablename__ = "authorisation_events"
    __table_args__ = (Index("ix_authorisation_events_at", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    authorisation_id: Mapped[int] = mapped_column(ForeignKey("authorisations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # granted|extended|suspended|resumed|revoked|expired
    reason: Mapped[str] = mapped_column(Text, default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuthorisationReminder(Base):
    __tablename__ = "authorisation_reminders"
    __table_args__ = (
        UniqueConstraint("authorisation_id", "ends_on", "days_ahead", name="uq_authorisation_reminder"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    authorisation_id: Mapped[int] = mapped_column(ForeignKey("authorisations.id", ondelete="CASCADE"))
    ends_on: Mapped[date] = mapped_column(Date)
    days_ahead: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GrantTerms(Base):
    __tablename__ = "grant_terms"
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # authorisation | emergency | system
    channels: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # None: all three
    columns: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # None: every column
    authorisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("authorisations.id", ondelete="SET NULL"), nullable=True, index=True
    )
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)  # emergency grants end
    reason: Mapped[str] = mapped_column(Text, default="")  # the emergency reason / system note
    # copied from the grant: the disclosure report lists it even after the grant is removed
    project_id: Mapped[int] = mapped_column(Integer)
    dataset_id: Mapped[int] = mapped_column(Integer)
    granted_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
