"""Hourly sensor feeds: traffic counts (交通运输局) and air quality (生态环境局).

The same vectorised model writes the 30-day history into the seed files and, through
``traffic_batch`` / ``air_quality_batch``, the next hour's rows that the demo server pushes while
it runs — so live rows continue the history with the same schema and the same daily shape.
Weather (the multi-day rise and fall of pollution) is a fixed smooth function of time, which
lets a live batch for any hour be computed without carrying state between pushes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from countylab.demo import names
from countylab.demo.geography import town_codes
from countylab.demo.sampling import DateArray, FloatArray, rng_for

_WEEKDAY = np.array(
    [
        0.08,
        0.05,
        0.04,
        0.04,
        0.06,
        0.15,
        0.45,
        0.95,
        1.0,
        0.7,
        0.6,
        0.62,
        0.65,
        0.6,
        0.6,
        0.65,
        0.8,
        1.0,
        0.9,
        0.6,
        0.45,
        0.35,
        0.25,
        0.14,
    ]
)
_WEEKEND = np.array(
    [
        0.1,
        0.07,
        0.05,
        0.04,
        0.05,
        0.1,
        0.2,
        0.4,
        0.6,
        0.7,
        0.75,
        0.75,
        0.7,
        0.7,
        0.72,
        0.75,
        0.78,
        0.8,
        0.7,
        0.55,
        0.45,
        0.35,
        0.25,
        0.15,
    ]
)
_HIGHWAYS = ("G235国道", "S213省道", "S310省道", "县道X508")

# HJ 633-2012 breakpoints: IAQI and concentration limits (μg/m³; PM 24-hour, NO2 and O3 1-hour)
_IAQI = (0, 50, 100, 150, 200, 300, 400, 500)
_BREAKS = {
    "pm25": (0, 35, 75, 115, 150, 250, 350, 500),
    "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
    "no2": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "o3": (0, 160, 200, 300, 400, 800, 1000, 1200),
}


@dataclass(frozen=True)
class Junction:
    junction_id: str
    junction_name: str
    town_code: str
    peak_flow: float  # vehicles per hour at the busiest hour of a weekday
    capacity: float
    free_speed: float  # km/h


@dataclass(frozen=True)
class Station:
    station_id: str
    station_name: str
    town_code: str
    pm_factor: float  # local pollution relative to the county mean
    traffic_factor: float  # weight of rush-hour NO2


def make_junctions(seed: int) -> list[Junction]:
    """The county's 20 counted junctions: 4 in each 街道, 1 in each of the first 8 镇."""
    rng = rng_for(seed, "junctions")
    codes = town_codes()
    out: list[Junction] = []
    for ti, (town, kind, _) in enumerate(names.TOWNS):
        if kind == "街道":
            roads = rng.choice(len(names.ROADS), 8, replace=False).tolist()
            spots = [(names.ROADS[roads[2 * j]], names.ROADS[roads[2 * j + 1]]) for j in range(4)]
            base = 850.0
        elif len(out) < 20:
            spots = [(town[:-1] + "大道", _HIGHWAYS[int(rng.integers(0, len(_HIGHWAYS)))])]
            base = 320.0
        else:
            continue
        for a, b in spots:
            peak = float(np.round(base * rng.lognormal(0, 0.3), 1))
            out.append(
                Junction(
                    junction_id=f"J{len(out) + 1:02d}",
                    junction_name=f"{town}{a}与{b}交叉口",
                    town_code=codes[ti],
                    peak_flow=peak,
                    capacity=float(np.round(peak * rng.uniform(1.1, 1.5), 1)),
                    free_speed=float(np.round(rng.uniform(35, 60), 1)),
                )
            )
    return out[:20]


def make_stations(seed: int) -> list[Station]:
    """Eight monitoring stations: one per 街道 and five in the larger towns."""
    rng = rng_for(seed, "stations")
    codes = town_codes()
    picks = [0, 1, 2, 3, 4, 7, 8, 10]
    out = []
    for k, ti in enumerate(picks):
        town, kind, terrain = names.TOWNS[ti]
        urban = kind == "街道"
        out.append(
            Station(
                station_id=f"AQ{k + 1:02d}",
                station_name=f"{town}{'空气自动监测站' if urban else '空气质量监测点'}",
                town_code=codes[ti],
                pm_factor=float(
                    np.round(
                        (1.1 if urban else 0.75 if terrain == "山区" else 0.95) * rng.lognormal(0, 0.08), 3
                    )
                ),
                traffic_factor=float(np.round(1.0 if urban else 0.5, 2)),
            )
        )
    return out


def _hours(start: datetime, count: int) -> DateArray:
    return np.datetime64(start, "h") + np.arange(count).astype("timedelta64[h]")


def _profile(hours: DateArray) -> FloatArray:
    hod = (hours - hours.astype("datetime64[D]")).astype(np.int64)
    weekday = (hours.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    shape: FloatArray = np.where(weekday >= 5, _WEEKEND[hod], _WEEKDAY[hod])
    return shape


def traffic_table(rng: np.random.Generator, hours: DateArray, junctions: Sequence[Junction]) -> pa.Table:
    """One row per (hour, junction), hour-major."""
    nj, nh = len(junctions), len(hours)
    hour = np.repeat(hours, nj)
    j = np.tile(np.arange(nj), nh)
    peak = np.array([x.peak_flow for x in junctions])[j]
    cap = np.array([x.capacity for x in junctions])[j]
    vf = np.array([x.free_speed for x in junctions])[j]
    mean = peak * _profile(hour) * rng.lognormal(0, 0.08, len(hour))
    vehicles = rng.poisson(mean).astype(np.int64)
    speed = vf * (1 - 0.55 * np.minimum(vehicles / cap, 1.2) ** 2) + rng.normal(0, 2.0, len(hour))
    return pa.table(
        {
            "junction_id": pa.array([x.junction_id for x in junctions]).take(pa.array(j)),
            "junction_name": pa.array([x.junction_name for x in junctions]).take(pa.array(j)),
            "town_code": pa.array([x.town_code for x in junctions]).take(pa.array(j)),
            "hour": pa.array(hour.astype("datetime64[s]"), pa.timestamp("s")),
            "vehicles": pa.array(vehicles),
            "avg_speed_kmh": pa.array(np.round(np.maximum(speed, 5.0), 1)),
        }
    )


def _weather(hours: DateArray) -> FloatArray:
    """County-wide pollution level: slow waves of 3-9 days (a fixed function of time)."""
    t = hours.astype(np.int64) / 24.0  # days since 1970
    return np.exp(
        0.35 * np.sin(2 * np.pi * t / 5.3 + 0.7)
        + 0.25 * np.sin(2 * np.pi * t / 8.7 + 2.1)
        + 0.15 * np.sin(2 * np.pi * t / 2.9 + 4.0)
    )


def _iaqi(values: FloatArray, pollutant: str) -> FloatArray:
    return np.ceil(np.interp(values, _BREAKS[pollutant], _IAQI))


def air_quality_table(rng: np.random.Generator, hours: DateArray, stations: Sequence[Station]) -> pa.Table:
    """One row per (hour, station), hour-major; AQI is the highest IAQI of the four pollutants."""
    ns, nh = len(stations), len(hours)
    hour = np.repeat(hours, ns)
    s = np.tile(np.arange(ns), nh)
    n = len(hour)
    hod = (hour - hour.astype("datetime64[D]")).astype(np.int64)
    pmf = np.array([x.pm_factor for x in stations])[s]
    trf = np.array([x.traffic_factor for x in stations])[s]
    level = _weather(hour)
    pm25 = 30 * pmf * level * (1 + 0.25 * np.cos(2 * np.pi * (hod - 7) / 24)) * rng.lognormal(0, 0.15, n)
    pm10 = pm25 * rng.uniform(1.4, 1.9, n)
    no2 = (10 + 30 * trf * _profile(hour)) * np.sqrt(level) * rng.lognormal(0, 0.2, n)
    sun = np.clip(np.sin(np.pi * (hod - 7) / 12), 0, None)
    o3 = np.maximum(25 + 120 * sun * rng.lognormal(0, 0.15, n) - 0.6 * no2, 2)
    sub = [_iaqi(pm25, "pm25"), _iaqi(pm10, "pm10"), _iaqi(no2, "no2"), _iaqi(o3, "o3")]
    aqi = np.max(np.vstack(sub), axis=0)
    return pa.table(
        {
            "station_id": pa.array([x.station_id for x in stations]).take(pa.array(s)),
            "station_name": pa.array([x.station_name for x in stations]).take(pa.array(s)),
            "town_code": pa.array([x.town_code for x in stations]).take(pa.array(s)),
            "hour": pa.array(hour.astype("datetime64[s]"), pa.timestamp("s")),
            "pm25": pa.array(np.round(pm25, 1)),
            "pm10": pa.array(np.round(pm10, 1)),
            "no2": pa.array(np.round(no2, 1)),
            "o3": pa.array(np.round(o3, 1)),
            "aqi": pa.array(aqi.astype(np.int64)),
        }
    )


def _batch_rng(rng_or_seed: np.random.Generator | int, stream: str, hour: datetime) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    hour_index = int(np.datetime64(hour, "h").astype(np.int64))
    return rng_for(rng_or_seed * 1_000_003 + hour_index, stream)


def traffic_batch(
    rng_or_seed: np.random.Generator | int, hour: datetime, junctions: Sequence[Junction]
) -> list[dict[str, Any]]:
    """The traffic rows for one hour (same columns as ``traffic_counts.csv``).

    With an integer seed the rows of a given hour are reproducible; pass a Generator instead
    to draw fresh ones.
    """
    rng = _batch_rng(rng_or_seed, "traffic-live", hour)
    rows: list[dict[str, Any]] = traffic_table(rng, _hours(hour, 1), junctions).to_pylist()
    return rows


def air_quality_batch(
    rng_or_seed: np.random.Generator | int, hour: datetime, stations: Sequence[Station]
) -> list[dict[str, Any]]:
    """The air quality rows for one hour (same columns as ``air_quality.csv``)."""
    rng = _batch_rng(rng_or_seed, "air-live", hour)
    rows: list[dict[str, Any]] = air_quality_table(rng, _hours(hour, 1), stations).to_pylist()
    return rows


def history_hours(end_exclusive: datetime, days: int) -> DateArray:
    """The ``days * 24`` whole hours before ``end_exclusive``."""
    hours: DateArray = _hours(end_exclusive, 1)[0] - np.arange(days * 24, 0, -1).astype("timedelta64[h]")
    return hours
