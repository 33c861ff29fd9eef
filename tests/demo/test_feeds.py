"""Live feeds continue the history with the same schema."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from countylab.demo.feeds import air_quality_batch, make_junctions, make_stations, traffic_batch


def test_traffic_batch_matches_schema_and_is_reproducible(tiny) -> None:
    junctions = make_junctions(tiny.manifest.seed)
    hour = datetime(2026, 11, 2, 8)  # a Monday rush hour
    rows = traffic_batch(7, hour, junctions)
    assert len(rows) == 20 and traffic_batch(7, hour, junctions) == rows
    assert list(rows[0]) == list(tiny.df("traffic_counts").columns)
    assert {r["hour"] for r in rows} == {hour}
    history_ids = set(tiny.df("traffic_counts")["junction_id"])
    assert {r["junction_id"] for r in rows} == history_ids
    night = traffic_batch(np.random.default_rng(1), datetime(2026, 11, 2, 3), junctions)
    assert sum(r["vehicles"] for r in rows) > 4 * sum(r["vehicles"] for r in night)


def test_air_quality_batch_aqi_is_the_worst_pollutant(tiny) -> None:
    stations = make_stations(tiny.manifest.seed)
    rows = air_quality_batch(3, datetime(2026, 11, 1, 14), stations)
    assert len(rows) == 8 and list(rows[0]) == list(tiny.df("air_quality").columns)
    for r in rows:
        # HJ 633-2012: PM2.5 35 -> 50, 75 -> 100; the AQI is at least the PM2.5 sub-index
        pm = r["pm25"]
        sub = np.ceil(np.interp(pm, [0, 35, 75, 115, 150], [0, 50, 100, 150, 200]))
        assert r["aqi"] >= sub
    assert air_quality_batch(3, datetime(2026, 11, 1, 14), stations) == rows
