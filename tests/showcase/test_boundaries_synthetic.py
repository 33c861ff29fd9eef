"""The demo county's synthetic boundaries: deterministic, valid, nested, small, points inside."""

from __future__ import annotations

import shapely
from shapely.geometry import Point, shape

from countylab.demo.boundaries import synthetic_map
from countylab.demo.feeds import make_junctions, make_stations
from countylab.demo.geography import build_geography
from countylab.demo.sampling import rng_for

SEED = 20261126


def test_same_seed_same_bytes_other_seed_other_map() -> None:
    first = synthetic_map(SEED).to_json()
    assert synthetic_map(SEED).to_json() == first  # byte for byte
    assert synthetic_map(7).to_json() != first


def test_every_area_is_valid_and_named_with_the_geography_codes() -> None:
    geo = build_geography(rng_for(SEED, "geography"))
    m = synthetic_map(SEED)
    towns = {f["properties"]["code"]: f for f in m.towns["features"]}
    villages = {f["properties"]["code"]: f for f in m.villages["features"]}
    assert list(towns) == geo.town_code and list(villages) == geo.village_code
    assert [f["properties"]["name"] for f in towns.values()] == geo.town_name
    assert [f["properties"]["name"] for f in villages.values()] == geo.village_name
    for f in [*towns.values(), *villages.values()]:
        g = shape(f["geometry"])
        assert g.is_valid and not g.is_empty and g.geom_type == "Polygon", f["properties"]
        assert f["properties"]["level"] in ("town", "village")


def test_towns_are_the_union_of_their_villages_and_areas_do_not_overlap() -> None:
    m = synthetic_map(SEED)
    villages = [shape(f["geometry"]) for f in m.villages["features"]]
    towns = [shape(f["geometry"]) for f in m.towns["features"]]
    county = shapely.union_all(villages)
    assert county.geom_type == "Polygon"  # one piece, no holes between villages
    assert abs(sum(v.area for v in villages) - county.area) < 1e-6 * county.area  # no overlaps
    for t, code in zip(towns, [f["properties"]["code"] for f in m.towns["features"]], strict=True):
        own = shapely.union_all(
            [
                v
                for v, f in zip(villages, m.villages["features"], strict=True)
                if f["properties"]["town"] == code
            ]
        )
        assert own.geom_type == "Polygon"  # a town's villages are neighbours
        assert t.symmetric_difference(own).area < 1e-4 * t.area
    # plausible size: a county of a few thousand km² near 119.6°E 29.1°N
    x0, y0, x1, y1 = county.bounds
    assert 119.0 < x0 < x1 < 120.3 and 28.6 < y0 < y1 < 29.6


def test_file_is_small() -> None:
    assert len(synthetic_map(SEED).to_json().encode()) < 400_000


def test_stations_and_junctions_stand_inside_their_town() -> None:
    m = synthetic_map(SEED)
    towns = {f["properties"]["code"]: shape(f["geometry"]) for f in m.towns["features"]}
    stations = {s.station_id: s.town_code for s in make_stations(SEED)}
    junctions = {j.junction_id: j.town_code for j in make_junctions(SEED)}
    assert [p["id"] for p in m.points["air_quality"]] == list(stations)
    assert [p["id"] for p in m.points["traffic_counts"]] == list(junctions)
    for layer, owner in (("air_quality", stations), ("traffic_counts", junctions)):
        for p in m.points[layer]:
            assert towns[owner[p["id"]]].contains(Point(p["lon"], p["lat"])), p
