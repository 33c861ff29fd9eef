"""ORM table of steward-added synonym groups for catalog search (检索同义词).

Created by migration ``0011_search_synonyms``.  The built-in county-government list lives in code
(``countylab.catalog.synonyms``); stewards add their county's own words here (a local name for a
programme, a department's abbreviation) without a release, and every search expands with both.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base, utcnow


class SynonymGroup(Base):
    __tablename__ = "search_synonyms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    words: Mapped[list[str]] = mapped_column(JSON, default=list)  # ["低保", "最低生活保障"]
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
