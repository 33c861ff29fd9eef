"""Plausible synthetic boundaries of 青禾县, drawn deterministically from its geography.

A real county imports its own boundary file; the demo county has none, so one is generated the
way a cartographer's sketch would look: an irregular county outline, towns as contiguous blocks
(the three 街道 small and central, the 镇 around them, mountain towns on the rim), villages as
cells inside their town (a town's villages are neighbours, as on a real map), and towns as the
exact union of their villages, so the two levels never disagree on a border.

How: a jittered lattice of a few thousand "parcels" covers the outline; each parcel joins the
nearest town seed (weighted, so central 街道 stay small), then, inside its town, the nearest
village seed (village seeds are spread by farthest-point sampling over the town's parcels).  The
Voronoi cells of the parcels, unioned per village, give borders that wander like real ones; a
coverage simplification (shared edges simplified once) keeps the file small without gaps or
overlaps.  Everything is drawn from :func:`~countylab.demo.sampling.rng_for` streams of the
county's seed: same seed, same bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, mapping

from countylab.demo import feeds
from countylab.demo.geography import Geography, build_geography
from countylab.demo.sampling import rng_for

#: roughly where a Zhejiang hill county lies (lon, lat of the county seat)
CENTRE = (119.62, 29.08)
#: half-size of the county in degrees (about 45 km east-west, 40 km north-south)
_RX, _RY = 0.24, 0.18
_LATTICE = 0.0062  # parcel spacing in degrees (~600 m)
_TOLERANCE = 0.0018  # coverage simplification tolerance in degrees (~120 m)
_GRID = 1e-5  # coordinates rounded to 5 decimals (~1 m)


@dataclass(frozen=True)
class CountyMap:
    """The synthetic map: town and village FeatureCollections and the demo feeds' points."""

    towns: dict[str, Any]
    villages: dict[str, Any]
    points: dict[str, list[dict[str, Any]]]  # layer -> [{id, name, lon, lat}]

    def to_json(self) -> str:
        """Canonical text (sorted keys, no spaces): what the determinism test compares."""
        return json.dumps(
            {"towns": self.towns, "villages": self.villages, "points": self.points},
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
        )


def _outline(rng: np.random.Generator) -> Polygon:
    """An irregular, star-shaped county outline: an ellipse bent by a few random harmonics."""
    n = 96
    theta = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    r = np.ones(n)
    for k, amp in ((2, 0.10), (3, 0.08), (5, 0.05), (8, 0.025), (13, 0.012)):
        r += amp * rng.uniform(0.6, 1.0) * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    xs = CENTRE[0] + _RX * r * np.cos(theta)
    ys = CENTRE[1] + _RY * r * np.sin(theta)
    return Polygon(list(zip(xs.tolist(), ys.tolist(), strict=True)))


def _town_seeds(rng: np.random.Generator, geo: Geography) -> tuple[np.ndarray, np.ndarray]:
    """Seed point and weight per town: 街道 near the centre, 平原 next, 丘陵/山区 on the rim."""
    ring = {"城区": 0.12, "平原": 0.42, "丘陵": 0.68, "山区": 0.8}
    weight = {"城区": 0.45, "平原": 1.0, "丘陵": 1.1, "山区": 1.25}
    rural = [i for i, t in enumerate(geo.terrain) if t != "城区"]
    start = rng.uniform(0, 2 * math.pi)
    angle: dict[int, float] = {}
    for k, i in enumerate(rural):  # rural towns around the centre, in list order (neighbours)
        angle[i] = start + 2 * math.pi * k / len(rural) + rng.uniform(-0.3, 0.3)
    urban = [i for i, t in enumerate(geo.terrain) if t == "城区"]
    for k, i in enumerate(urban):
        angle[i] = start + 2 * math.pi * k / len(urban) + 0.4
    seeds, weights = [], []
    for i, terrain in enumerate(geo.terrain):
        rad = ring[terrain] * rng.uniform(0.8, 1.2)
        seeds.append((CENTRE[0] + _RX * rad * math.cos(angle[i]), CENTRE[1] + _RY * rad * math.sin(angle[i])))
        weights.append(weight[terrain])
    return np.array(seeds), np.array(weights)


def _parcels(rng: np.random.Generator, outline: Polygon) -> np.ndarray:
    x0, y0, x1, y1 = outline.bounds
    xs = np.arange(x0, x1 + _LATTICE, _LATTICE)
    ys = np.arange(y0, y1 + _LATTICE, _LATTICE)
    gx, gy = np.meshgrid(xs, ys)
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    pts = pts + rng.uniform(-0.35, 0.35, pts.shape) * _LATTICE
    inside = shapely.contains_xy(outline.buffer(_LATTICE), pts[:, 0], pts[:, 1])
    kept: np.ndarray = pts[inside]
    return kept


def _wobble(rng: np.random.Generator, pts: np.ndarray, n: int) -> np.ndarray:
    """A smooth random field per town (a few sine waves) added to the distances, so town
    borders bend like rivers and ridges instead of running straight between seeds."""
    out = np.zeros((len(pts), n))
    for t in range(n):
        for _ in range(3):
            kx, ky = rng.uniform(-40, 40, 2)
            out[:, t] += 0.012 * np.sin(kx * pts[:, 0] + ky * pts[:, 1] + rng.uniform(0, 2 * math.pi))
    return out


def _spread(rng: np.random.Generator, pts: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` points of ``pts`` spread out (farthest-point sampling, random start)."""
    chosen = [int(rng.integers(0, len(pts)))]
    dist = np.hypot(*(pts - pts[chosen[0]]).T)
    while len(chosen) < n:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.hypot(*(pts - pts[nxt]).T))
    return np.array(chosen)


def _largest(geom: shapely.Geometry) -> Polygon:
    if isinstance(geom, Polygon):
        return geom
    parts = list(getattr(geom, "geoms", []))
    polys = [p for p in parts if isinstance(p, Polygon)]
    return max(polys, key=lambda p: p.area)


def _feature(code: str, name: str, level: str, geom: shapely.Geometry, **extra: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"code": code, "name": name, "level": level, **extra},
        "geometry": mapping(geom),
    }


def _geojson(geom: shapely.Geometry) -> Any:
    return json.loads(shapely.to_geojson(geom))


def synthetic_map(seed: int = 20261126, geo: Geography | None = None) -> CountyMap:
    """The demo county's boundaries and feed points for ``seed`` (the county generator's seed)."""
    geo = geo or build_geography(rng_for(seed, "geography"))
    rng = rng_for(seed, "boundaries")
    outline = _outline(rng)
    seeds, weights = _town_seeds(rng, geo)
    pts = _parcels(rng, outline)
    d = np.hypot(pts[:, None, 0] - seeds[None, :, 0], pts[:, None, 1] - seeds[None, :, 1]) / weights
    d = d + _wobble(rng, pts, geo.n_towns)
    town_of = np.argmin(d, axis=1)

    village_of = np.full(len(pts), -1)
    for ti in range(geo.n_towns):
        members = np.flatnonzero(town_of == ti)
        vidx = np.flatnonzero(geo.village_town == ti)
        picks = members[_spread(rng, pts[members], len(vidx))]
        dv = np.hypot(
            pts[members, None, 0] - pts[None, picks, 0], pts[members, None, 1] - pts[None, picks, 1]
        )
        village_of[members] = vidx[np.argmin(dv, axis=1)]

    cells = shapely.voronoi_polygons(shapely.MultiPoint(pts), extend_to=outline.buffer(0.05), ordered=True)
    clipped = shapely.intersection(np.array(list(cells.geoms)), outline)
    villages = [_largest(shapely.union_all(clipped[village_of == v])) for v in range(geo.n_villages)]
    # a stray piece dropped by _largest leaves a hole in the coverage: give it back to the town's
    # largest village it touches, so towns still tile the outline
    covered = shapely.union_all(villages)
    gaps = shapely.difference(outline, covered)
    for gap in getattr(gaps, "geoms", [gaps]):
        if gap.is_empty or gap.area < 1e-12:
            continue
        touching = [v for v in range(geo.n_villages) if villages[v].intersects(gap.buffer(1e-9))]
        if touching:
            best = max(touching, key=lambda v: villages[v].intersection(gap.buffer(1e-9)).length)
            villages[best] = _largest(shapely.union_all([villages[best], gap.buffer(1e-9)]))

    simple = shapely.coverage_simplify(np.array(villages), _TOLERANCE)
    simple = shapely.set_precision(simple, _GRID)
    simple = [shapely.make_valid(g) if not g.is_valid else g for g in simple]
    village_features = [
        _feature(
            geo.village_code[v],
            geo.village_name[v],
            "village",
            _largest(simple[v]),
            town=geo.town_code[int(geo.village_town[v])],
        )
        for v in range(geo.n_villages)
    ]
    towns_geom = []
    town_features = []
    for ti in range(geo.n_towns):
        parts = [simple[v] for v in np.flatnonzero(geo.village_town == ti)]
        town = shapely.set_precision(shapely.union_all(parts), _GRID)
        if isinstance(town, MultiPolygon):
            town = _largest(town)
        towns_geom.append(town)
        town_features.append(_feature(geo.town_code[ti], geo.town_name[ti], "town", town))

    points = _feed_points(seed, geo, towns_geom)
    return CountyMap(
        towns={"type": "FeatureCollection", "features": town_features},
        villages={"type": "FeatureCollection", "features": village_features},
        points=points,
    )


def _inside(rng: np.random.Generator, poly: Polygon, near: Point, spread: float) -> tuple[float, float]:
    """A point inside ``poly`` near ``near`` (the town seat), drawn until one falls inside."""
    for _ in range(200):
        x = near.x + rng.normal(0, spread)
        y = near.y + rng.normal(0, spread)
        if poly.contains(Point(x, y)):
            return round(x, 5), round(y, 5)
    return round(near.x, 5), round(near.y, 5)


def _feed_points(seed: int, geo: Geography, towns: list[Polygon]) -> dict[str, list[dict[str, Any]]]:
    """Where the demo feeds' stations and junctions stand: in their own town, near its seat."""
    rng = rng_for(seed, "map-points")
    index = {c: i for i, c in enumerate(geo.town_code)}
    seat = [t.representative_point() for t in towns]

    def place(point_id: str, name: str, town_code: str, spread: float) -> dict[str, Any]:
        lon, lat = _inside(rng, towns[index[town_code]], seat[index[town_code]], spread)
        return {"id": point_id, "name": name, "lon": lon, "lat": lat}

    stations = [place(s.station_id, s.station_name, s.town_code, 0.01) for s in feeds.make_stations(seed)]
    junctions = [
        place(j.junction_id, j.junction_name, j.town_code, 0.008) for j in feeds.make_junctions(seed)
    ]
    return {"air_quality": stations, "traffic_counts": junctions}
