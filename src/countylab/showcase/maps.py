"""The county map's reading side: area names, boundary GeoJSON and choropleth charts.

A choropleth is a :class:`~countylab.showcase.chartspec.Chart` of kind ``map`` whose categories
are *every* area code of a level, in the county's order, so that an area without a value is
still drawn (grey, 无数据) instead of silently vanishing: a reader must be able to tell "no
figure released" from "zero".  Area names come from the imported boundaries, else from the
county's town and village key sets (the map can be charted before any boundary is imported).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.errors import ValidationFailed
from countylab.showcase.chartspec import Chart, ChartKind, Series, Source, SourceKind
from countylab.storage.catalog_models import KeySet
from countylab.storage.map_models import MapArea, MapImport, MapPoint

#: the key set that lists the codes of each map level
LEVEL_KEY_SETS = {"town": "towns.town_code", "village": "villages.village_code"}
LEVEL_NAMES = {"town": ("乡镇（街道）", "town"), "village": ("村（社区）", "village")}


def check_level(level: str) -> str:
    if level not in LEVEL_KEY_SETS:
        raise ValidationFailed(
            f"未知的地图层级：{level}（应为 town 或 village）",
            f"Unknown map level: {level} (town or village)",
            reason="level",
            value=level,
        )
    return level


def known_codes(session: Session, level: str) -> dict[str, str]:
    """The county's codes of ``level`` with their names (from the key set), in key-set order."""
    ks = session.execute(select(KeySet).where(KeySet.name == LEVEL_KEY_SETS[check_level(level)])).scalar()
    if ks is None:
        return {}
    labels = ks.labels or {}
    return {str(c): str(labels.get(str(c), "")) for c in ks.values}


def area_names(session: Session, level: str) -> dict[str, str]:
    """Code -> name of every area of ``level``: key-set order and names, filled in by the
    boundaries (which may name an area the key set has no label for), then any boundary area
    the key set lacks (a key set is replaced only when its source table is)."""
    names = known_codes(session, level)
    rows = session.execute(
        select(MapArea.code, MapArea.name).where(MapArea.level == level).order_by(MapArea.code)
    ).all()
    for code, name in rows:
        if not names.get(code):
            names[code] = name
    return names


def choropleth(
    session: Session,
    *,
    level: str,
    values: dict[str, float | None],
    low: dict[str, float | None] | None = None,
    high: dict[str, float | None] | None = None,
    title: str,
    unit: str = "",
    source: Source,
    series_name: str | None = None,
    texts: dict[str, str] | None = None,
) -> Chart:
    """A ``map``-kind chart over every area of ``level``; codes without a value are ``None``
    (drawn as 无数据).  A code the county does not know is refused by name, so a mistyped
    village code never silently drops a number.  DP values need ``low`` and ``high`` (the
    :class:`Chart` refuses them otherwise)."""
    names = area_names(session, level)
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValidationFailed(
            f"地图“{title}”含本县没有的{LEVEL_NAMES[level][0]}代码：{'、'.join(unknown[:5])}",
            f"Map '{title}' holds {LEVEL_NAMES[level][1]} codes the county does not have: "
            f"{', '.join(unknown[:5])}",
            reason="unknown_code",
            codes=unknown,
        )
    codes = list(names)

    def column(d: dict[str, float | None] | None) -> list[float | None] | None:
        if d is None:
            return None
        picked = [d.get(c) for c in codes]
        return [None if v is None else float(v) for v in picked]

    series = Series(
        name=series_name or title,
        values=column(values) or [],
        low=column(low),
        high=column(high),
        texts=[texts.get(c, "") if values.get(c) is not None else "" for c in codes] if texts else None,
    )
    return Chart(
        kind=ChartKind.map,
        title=title,
        source=source,
        unit=unit,
        categories=codes,
        category_names=[names[c] or c for c in codes],
        series=[series],
        level=level,
        note="95% 区间" if source.kind == SourceKind.dp else "",
    )


def current_import(session: Session, level: str) -> MapImport | None:
    return session.execute(
        select(MapImport).where(MapImport.level == level).order_by(MapImport.id.desc()).limit(1)
    ).scalar()


def boundaries(session: Session, level: str, *, full: bool = False) -> dict[str, Any]:
    """The GeoJSON FeatureCollection of ``level`` (simplified for display unless ``full``);
    properties ``code``, ``name``, ``level`` (and ``town`` for a village: its town's code)."""
    check_level(level)
    rows = session.execute(select(MapArea).where(MapArea.level == level).order_by(MapArea.code)).scalars()
    features = []
    for a in rows:
        props: dict[str, Any] = {"code": a.code, "name": a.name, "level": level}
        if level == "village":
            props["town"] = a.code[:9]
        features.append(
            {"type": "Feature", "properties": props, "geometry": a.geometry if full else a.display}
        )
    imp = current_import(session, level)
    return {
        "type": "FeatureCollection",
        "features": features,
        "level": level,
        "import": None
        if imp is None
        else {"id": imp.id, "source": imp.source, "at": imp.created_at.isoformat(), "features": imp.features},
    }


def points(session: Session, layer: str) -> dict[str, tuple[str, float, float]]:
    """Point id -> (name, lon, lat) of an open-data layer (``air_quality``, ``traffic_counts``)."""
    rows = session.execute(select(MapPoint).where(MapPoint.layer == layer).order_by(MapPoint.point_id))
    return {p.point_id: (p.name, p.lon, p.lat) for p in rows.scalars()}


def status(session: Session) -> dict[str, Any]:
    """For the map page of the lab: per level, the current boundaries, what they lack, the history;
    and how many points each open-data layer has."""
    from countylab.storage.models import User

    levels = {}
    for level in LEVEL_KEY_SETS:
        known = known_codes(session, level)
        drawn = set(session.execute(select(MapArea.code).where(MapArea.level == level)).scalars())
        history = session.execute(
            select(MapImport, User.username)
            .outerjoin(User, User.id == MapImport.created_by)
            .where(MapImport.level == level)
            .order_by(MapImport.id.desc())
            .limit(20)
        ).all()
        levels[level] = {
            "known": len(known),
            "areas": len(drawn),
            "missing": [{"code": c, "name": n} for c, n in known.items() if c not in drawn],
            "imports": [
                {
                    "id": imp.id,
                    "source": imp.source,
                    "filename": imp.filename,
                    "features": imp.features,
                    "code_property": imp.code_property,
                    "sha256": imp.sha256,
                    "by": username or "",
                    "at": imp.created_at.isoformat(),
                }
                for imp, username in history
            ],
        }
    layers: dict[str, int] = {}
    for layer in session.execute(select(MapPoint.layer)).scalars():
        layers[layer] = layers.get(layer, 0) + 1
    return {"levels": levels, "points": layers}
