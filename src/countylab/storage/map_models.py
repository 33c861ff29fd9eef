"""ORM tables of county map boundaries (towns and villages) and point layers, created by migration
``0017_county_maps``.

* ``map_imports``: one row per boundary file accepted for a level (the demo's synthetic boundaries
  are one too, ``source = "demo"``): who brought it, its name, checksum and feature count.  The
  newest import of a level is the one drawn; older rows stay as history.
* ``map_areas``: the areas of the current boundaries, one per (level, code), matched to the
  county's town and village key sets.  ``geometry`` is the GeoJSON geometry as accepted (WGS84
  lon/lat); ``display`` the simplified one the public map draws (a few hundred KB per level).
* ``map_points``: where the points of an open-data layer stand (air-quality stations, junctions),
  by the id their dataset uses (``AQ01``, ``J07``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base, utcnow


class MapImport(Base):
    __tablename__ = "map_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(10))  # town | village
    source: Mapped[str] = mapped_column(String(20))  # demo | geojson | shapefile
    filename: Mapped[str] = mapped_column(String(200), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    code_property: Mapped[str] = mapped_column(String(64), default="code")
    features: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MapArea(Base):
    __tablename__ = "map_areas"
    __table_args__ = (UniqueConstraint("level", "code", name="uq_map_area"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100), default="")
    import_id: Mapped[int] = mapped_column(ForeignKey("map_imports.id", ondelete="CASCADE"), index=True)
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    display: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class MapPoint(Base):
    __tablename__ = "map_points"
    __table_args__ = (UniqueConstraint("layer", "point_id", name="uq_map_point"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer: Mapped[str] = mapped_column(String(64))  # the open dataset's name: air_quality, traffic_counts
    point_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100), default="")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
