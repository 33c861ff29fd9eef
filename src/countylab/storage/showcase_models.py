"""ORM tables of the public showcase (project stories, the gallery, retractions), created by
migration ``0019_showcase``.

A story chart and a gallery item keep the chart *as built* (``chart``, a
:meth:`countylab.showcase.chartspec.Chart.to_dict`) from a released file or a DP answer, and the
record it came from (``request_id``/``file_id``/``query_id``).  What is shown is decided when it is
shown: only while the source release request is still ``released`` (a retraction hides it at once).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base, utcnow


class Story(Base):
    """One finished project told to the public (项目成果): one story per project."""

    __tablename__ = "showcase_stories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), unique=True)
    scenario_id: Mapped[int | None] = mapped_column(ForeignKey("scenarios.id"), nullable=True)
    title: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(200), default="")  # as the public reads it
    scenario_text: Mapped[str] = mapped_column(Text, default="")  # the problem, in a sentence or two
    summary: Mapped[str] = mapped_column(Text, default="")  # the outcome
    state: Mapped[str] = mapped_column(String(20), default="draft")  # draft | published
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StoryChart(Base):
    __tablename__ = "showcase_story_charts"
    __table_args__ = (Index("ix_showcase_story_charts_story", "story_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("showcase_stories.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    source_kind: Mapped[str] = mapped_column(String(10))  # release | dp
    request_id: Mapped[int | None] = mapped_column(ForeignKey("release_requests.id"), nullable=True)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("release_files.id"), nullable=True)
    query_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the DP answer's query
    chart: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GalleryItem(Base):
    """A released result chosen for the showcase (成果展示), linked to its release record."""

    __tablename__ = "showcase_gallery"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("release_requests.id"), unique=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("release_files.id"))
    title: Mapped[str] = mapped_column(String(200))
    caption: Mapped[str] = mapped_column(Text, default="")
    chart: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Retraction(Base):
    """Why and by whom a released result was taken off display (the request's state says that it was)."""

    __tablename__ = "showcase_retractions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("release_requests.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    retracted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    retracted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
