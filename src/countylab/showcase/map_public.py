"""What the public county map shows: statistics that may be shown, and the open-data points.

Only three kinds of number reach the map, as everywhere on the showcase: open data (一般1级),
results released through the airlock, and DP statistics with their intervals.  The map takes
them from what was already cleared for the public pages — the showable charts of published
project stories and the map widgets of published dashboards — and never builds a number of its
own.  A bar chart whose categories are all towns (or all villages) of the county is shown as a
choropleth too: the elderly-care project's DP statistic "elderly people living alone by town" is
such a bar chart in its story.

Point layers are the live open feeds (:mod:`countylab.showcase.open_data`: confirmed 一般1级
only), placed where the map's point table puts each station or junction.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from countylab.errors import CountylabError
from countylab.showcase import open_data, stories
from countylab.showcase.cache import cached
from countylab.showcase.chartspec import Source, SourceKind
from countylab.showcase.maps import area_names, choropleth, points

if TYPE_CHECKING:
    from countylab.lab import Lab

log = logging.getLogger("countylab.showcase.map_public")

REFRESH_S = 30.0
#: the reading each layer shows on the map (the feed's first column is the headline)
POINT_VALUE = {"air_quality": "aqi", "traffic_counts": "vehicles"}


def _keyed(codes: list[str], seq: list[Any] | None) -> dict[str, Any] | None:
    return None if seq is None else dict(zip(codes, seq, strict=True))


def as_map(session: Session, spec: dict[str, Any]) -> dict[str, Any] | None:
    """``spec`` as a map-kind chart dict, or ``None`` when it is not about the county's areas."""
    if spec.get("kind") == "map":
        return spec
    series = spec.get("series") or []
    if spec.get("kind") != "bar" or len(series) != 1:
        return None
    cats = [str(c) for c in spec.get("categories") or []]
    if not cats:
        return None
    for level in ("town", "village"):
        names = area_names(session, level)
        by_name = {n: c for c, n in names.items() if n}
        if all(c in names for c in cats):
            codes = cats
        elif all(c in by_name for c in cats):
            codes = [by_name[c] for c in cats]
        else:
            continue
        s = series[0]

        src = spec.get("source") or {}
        try:
            chart = choropleth(
                session,
                level=level,
                values=_keyed(codes, s.get("values")) or {},
                low=_keyed(codes, s.get("low")),
                high=_keyed(codes, s.get("high")),
                texts={k: str(v) for k, v in (_keyed(codes, s.get("texts")) or {}).items()},
                title=str(spec.get("title", "")),
                unit=str(spec.get("unit", "")),
                series_name=str(s.get("name", "")),
                source=Source(
                    SourceKind(src.get("kind", "release")),
                    str(src.get("label", "")),
                    str(src.get("ref", "")),
                    str(src.get("as_of", "")),
                ),
            )
        except (CountylabError, ValueError) as e:
            log.info("chart %r not drawn on the map: %s", spec.get("title"), e)
            return None
        return chart.to_dict()
    return None


def _from_stories(session: Session) -> list[dict[str, Any]]:
    out = []
    for story in stories.list_stories(session, published_only=True):
        for view in stories.chart_views(session, story):
            if not view.showable:
                continue
            spec = as_map(session, view.spec)
            if spec is not None:
                out.append({"key": f"story-{view.id}", "origin": "story", "chart": spec})
    return out


def _from_dashboards(session: Session) -> list[dict[str, Any]]:
    """Map widgets of published dashboards (engineer F's publication: approved by the steward,
    hidden while a release they show is withdrawn)."""
    try:
        from countylab.showcase import publication  # type: ignore[attr-defined,unused-ignore]
        from countylab.showcase.dashboards import widgets
    except ImportError:  # the dashboards arrive in the same release as the map
        return []
    out = []
    for d in publication.public_list(session):
        for w in widgets(session, d.id):
            spec = as_map(session, dict(w.chart or {}))
            if spec is not None:
                out.append({"key": f"dashboard-{w.id}", "origin": "dashboard", "chart": spec})
    return out


def statistics(session: Session) -> list[dict[str, Any]]:
    """Every statistic the public map may draw: ``key``, ``origin``, ``chart`` (a map chart dict)."""
    return _from_stories(session) + _from_dashboards(session)


def point_layers(lab: Lab) -> list[dict[str, Any]]:
    """The open feeds' newest readings at their points (feeds or points missing: layer left out)."""
    readings = open_data.latest(lab)
    layers = []
    with lab.read() as s:
        where = {r.dataset: points(s, r.dataset) for r in readings}
    for r in readings:
        placed = where.get(r.dataset) or {}
        by_name = {name: (pid, lon, lat) for pid, (name, lon, lat) in placed.items()}
        value_col = POINT_VALUE.get(r.dataset) or (r.columns[0][0] if r.columns else "")
        label = next(((zh, en) for c, zh, en in r.columns if c == value_col), (value_col, value_col))
        items = []
        for row in r.rows:
            hit = by_name.get(str(row.get("place")))
            if hit is None:
                continue
            pid, lon, lat = hit
            items.append(
                {
                    "id": pid,
                    "name": row.get("place"),
                    "lon": lon,
                    "lat": lat,
                    "value": row.get(value_col),
                    "hour": row.get("hour"),
                    "readings": [[zh, en, row.get(c)] for c, zh, en in r.columns],
                }
            )
        if items:
            layers.append(
                {
                    "layer": r.dataset,
                    "title": r.title,
                    "department": r.department,
                    "as_of": r.as_of,
                    "value_label": list(label),
                    "points": items,
                }
            )
    return layers


def public_payload(lab: Lab) -> dict[str, Any]:
    """Statistics and point layers for the public map page, cached :data:`REFRESH_S` seconds."""

    def build() -> dict[str, Any]:
        with lab.read() as s:
            stats = statistics(s)
        return {"statistics": stats, "layers": point_layers(lab)}

    return cached(("public-map", str(lab.settings.data_dir), id(lab)), REFRESH_S, build)
