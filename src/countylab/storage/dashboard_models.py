"""ORM tables of dashboards, their widgets, the showcase budget's cached DP metrics and publication
approvals, created by migration ``0018_dashboards``.

* ``dashboards`` (数据看板): title, slug, description and a state (``draft`` → ``pending`` →
  ``published``).  ``version`` is bumped by every edit: an approval is for one version, so an edit
  after it sends the dashboard back to draft.  ``data_version`` is bumped whenever a widget's cached
  chart is re-rendered (a metric refreshed, open data changed): the public JSON cache keys on both.
* ``dashboard_widgets``: one chart of a dashboard, at ``position``, drawn from ONE source
  (``source_kind`` open | release | dp, ``source`` its parameters).  ``chart`` is the rendered
  :class:`countylab.showcase.chartspec.Chart` (its ``to_dict``), so no page computes anything.
* ``showcase_metrics``: a DP SQL query charged to the showcase project's budget; ``result`` holds
  the last answer with its intervals; ``stale``/``stale_reason`` say why a refresh was refused.
* ``dashboard_approvals``: a request to publish one version, with every number that will appear
  (``numbers``) and the widgets as approved (``widgets``), decided by the security officer.
* ``big_screens`` (驾驶舱): which dashboards rotate, in which order, and for how long each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base, utcnow


class Dashboard(Base):
    __tablename__ = "dashboards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(20), default="draft")  # draft | pending | published
    version: Mapped[int] = mapped_column(Integer, default=1)
    data_version: Mapped[int] = mapped_column(Integer, default=1)
    published_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DashboardWidget(Base):
    __tablename__ = "dashboard_widgets"
    __table_args__ = (Index("ix_dashboard_widgets_dashboard", "dashboard_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dashboard_id: Mapped[int] = mapped_column(ForeignKey("dashboards.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(10))  # bar | line | map | table | card
    title: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(40), default="")
    source_kind: Mapped[str] = mapped_column(String(10))  # open | release | dp
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    chart: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    rendered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ShowcaseMetric(Base):
    __tablename__ = "showcase_metrics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    sql: Mapped[str] = mapped_column(Text)
    epsilon: Mapped[float] = mapped_column(Float)
    schedule: Mapped[str] = mapped_column(String(10), default="daily")  # hourly | daily | weekly | manual
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    tried_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    stale_reason: Mapped[str] = mapped_column(Text, default="")
    stale_reason_en: Mapped[str] = mapped_column(Text, default="")
    query_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    epsilon_spent: Mapped[float] = mapped_column(Float, default=0.0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DashboardApproval(Base):
    __tablename__ = "dashboard_approvals"
    __table_args__ = (Index("ix_dashboard_approvals_dashboard", "dashboard_id", "state"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dashboard_id: Mapped[int] = mapped_column(ForeignKey("dashboards.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending|approved|rejected|superseded
    numbers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    widgets: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")


class BigScreen(Base):
    __tablename__ = "big_screens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    dashboard_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    seconds: Mapped[int] = mapped_column(Integer, default=20)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
