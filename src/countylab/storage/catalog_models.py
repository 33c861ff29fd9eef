"""Catalog tables of the data middle platform (数据中台): columns, versions, key sets, lineage,
push idempotency keys, pull connectors and their runs, grade changes."""

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
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base, utcnow


class DatasetColumn(Base):
    __tablename__ = "dataset_columns"
    __table_args__ = (UniqueConstraint("dataset_id", "name", name="uq_dataset_column"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200), default="")
    semantic: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pii_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    pii_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    pii_sample_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pii_matched_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    lower: Mapped[float | None] = mapped_column(Float, nullable=True)  # steward-set clamping bounds
    upper: Mapped[float | None] = mapped_column(Float, nullable=True)
    key_set: Mapped[str | None] = mapped_column(String(64), nullable=True)  # public key set name
    joinable_to: Mapped[list[str]] = mapped_column(JSON, default=list)  # ["households.household_id"]
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # null rate, distinct, min/max


class KeySet(Base):
    """A public key set (towns, villages, industries): group keys that reveal nothing."""

    __tablename__ = "key_sets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    values: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # code -> display name (town code -> 城关镇): public like the codes, shown in answers at no cost
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version", name="uq_dataset_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    row_count: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    mode: Mapped[str] = mapped_column(String(20))  # replace | append | upsert | compaction
    source: Mapped[str] = mapped_column(String(20))  # upload | push | pull | demo | pipeline
    files: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # file name -> sha256
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PushKey(Base):
    __tablename__ = "push_keys"
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Lineage(Base):
    __tablename__ = "lineage"
    __table_args__ = (UniqueConstraint("parent_id", "child_id", name="uq_lineage"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    child_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    via: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Connector(Base):
    """A scheduled incremental pull from a department database table."""

    __tablename__ = "connectors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # postgresql
    dsn: Mapped[str] = mapped_column(Text)
    source_table: Mapped[str] = mapped_column(String(200))
    cursor_column: Mapped[str] = mapped_column(String(128))
    key_columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    interval_s: Mapped[int] = mapped_column(Integer, default=300)
    last_cursor: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SyncRun(Base):
    __tablename__ = "sync_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connector_id: Mapped[int] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="running")  # running | succeeded | failed
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")


class GradeChange(Base):
    __tablename__ = "grade_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    from_grade: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_grade: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))  # proposed | confirmed | raised | lowered
    reason: Mapped[str] = mapped_column(Text, default="")
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
