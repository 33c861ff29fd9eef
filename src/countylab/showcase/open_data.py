"""Live open data (实时开放数据): the newest hour per monitoring station and per junction.

Only datasets that are *open* are read: graded 一般1级 (general_1), the grade confirmed by the
steward, and rows downloadable under the grade policy with the steward's overrides (a steward who
denies ``download_rows`` on a feed takes it off the public pages too).  A dataset of any other
grade is never opened here, whatever its name.  Rows are read from the warehouse's Parquet files
(the current version and the pushed stream) with DuckDB, the newest hour per station or junction,
and cached for a minute: the feeds push every few seconds, the page need not follow every push.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from sqlalchemy import select

from countylab.airlock.context import overrides_of
from countylab.catalog.grading import Grade
from countylab.policy import Action, decide
from countylab.showcase.cache import cached
from countylab.storage.models import Dataset

if TYPE_CHECKING:
    from countylab.lab import Lab

REFRESH_S = 60.0


@dataclass(frozen=True)
class Feed:
    """How one open feed is shown: its key, the place's name, the hour and the columns read."""

    dataset: str
    key: str
    place: str
    hour: str
    columns: tuple[tuple[str, str, str], ...]  # (column, 中文, English)


FEEDS: tuple[Feed, ...] = (
    Feed(
        "air_quality",
        "station_id",
        "station_name",
        "hour",
        (("aqi", "AQI", "AQI"), ("pm25", "PM2.5", "PM2.5"), ("pm10", "PM10", "PM10"), ("no2", "NO₂", "NO₂")),
    ),
    Feed(
        "traffic_counts",
        "junction_id",
        "junction_name",
        "hour",
        (
            ("vehicles", "车流量（辆/小时）", "vehicles/hour"),
            ("avg_speed_kmh", "平均车速", "avg. speed km/h"),
        ),
    ),
)


@dataclass(frozen=True)
class Readings:
    dataset: str
    title: str
    department: str
    columns: list[tuple[str, str, str]]
    rows: list[dict[str, Any]]  # {"place": ..., "hour": ISO text, column: value}
    as_of: str  # newest hour in the rows


def is_open(ds: Dataset) -> bool:
    """Open display: confirmed 一般1级 whose policy (with the steward's overrides) allows rows out."""
    if ds.grade != Grade.general_1.value or not ds.grade_confirmed:
        return False
    return decide(Grade(ds.grade), Action.download_rows, overrides=overrides_of(ds)).allowed


def latest(lab: Lab) -> list[Readings]:
    """Every open feed's newest readings (cached for :data:`REFRESH_S` seconds)."""
    return cached(("open-data", str(lab.settings.data_dir), id(lab)), REFRESH_S, lambda: _latest(lab))


def _latest(lab: Lab) -> list[Readings]:
    plans: list[tuple[Feed, str, str, list[Path], set[str]]] = []
    with lab.read() as s:
        for feed in FEEDS:
            ds = s.execute(select(Dataset).where(Dataset.name == feed.dataset)).scalar_one_or_none()
            if ds is None or not is_open(ds):
                continue
            names = {c["name"] for c in (ds.table_schema or {}).get("columns", [])}
            plans.append((feed, ds.title, ds.org.name if ds.org else "", lab.ingestion.read_paths(ds), names))
    out: list[Readings] = []
    for feed, title, dept, paths, names in plans:
        needed = {feed.key, feed.place, feed.hour}
        if not paths or not needed <= names:
            continue
        cols = [c for c in feed.columns if c[0] in names]
        out.append(Readings(feed.dataset, title, dept, cols, _read(feed, cols, paths), ""))
    return [
        Readings(
            r.dataset, r.title, r.department, r.columns, r.rows, max((x["hour"] for x in r.rows), default="")
        )
        for r in out
    ]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read(feed: Feed, cols: list[tuple[str, str, str]], paths: list[Path]) -> list[dict[str, Any]]:
    files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"
    picked = ", ".join(_quote(c) for c, _z, _e in cols)
    sql = (
        f"SELECT {_quote(feed.place)} AS place, CAST({_quote(feed.hour)} AS VARCHAR) AS hour"
        f"{', ' + picked if picked else ''} FROM read_parquet({files}, union_by_name=true) "
        f"QUALIFY row_number() OVER (PARTITION BY {_quote(feed.key)} ORDER BY {_quote(feed.hour)} DESC) = 1 "
        f"ORDER BY {_quote(feed.key)} LIMIT 200"
    )
    con = duckdb.connect()
    try:
        rel = con.execute(sql)
        names = [d[0] for d in rel.description]
        rows = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
    finally:
        con.close()
    for r in rows:
        for k, v in list(r.items()):
            if isinstance(v, float):
                r[k] = round(v, 1)
            elif isinstance(v, datetime):
                r[k] = v.isoformat()
    return rows
