"""The 100M-row table of ``bench/dp_query.py --with-100m``: hourly traffic counts over years.

2,000 road sensors × 50,000 hours (5.7 years) = 100M rows, written in hour order as a live feed
would arrive.  The privacy unit is the sensor's operator-assigned station code (``station``):
every unit has 50,000 rows, so preparing the version ranks 100M rows per unit, the heaviest
case of ``__rank``.  The query groups by district (20 public keys).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from countylab.privacy.spec import ColumnKind, ColumnPolicy, TableSpec

STATIONS = 2_000
SQL = "SELECT district, COUNT(*), SUM(vehicles) FROM traffic GROUP BY district"
RAW_SQL = SQL
K = 10_000  # rows kept per station: the query bounds each unit's contribution to this many


DISTRICTS = tuple(f"区{i:02d}" for i in range(20))


def station_codes(n: int = STATIONS) -> tuple[str, ...]:
    return tuple(f"S{i:04d}" for i in range(n))


def generate_traffic(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    codes = np.array(station_codes())
    hours_per_chunk = max(1, 2_000_000 // STATIONS)
    start = np.datetime64("2015-01-01T00:00:00", "s")
    writer: pq.ParquetWriter | None = None
    done = 0
    while done < rows:
        n = min(hours_per_chunk * STATIONS, rows - done)
        idx = np.arange(done, done + n)
        table = pa.table(
            {
                "station": pa.array(codes[idx % STATIONS]),
                "district": pa.array(np.array(DISTRICTS)[(idx % STATIONS) % len(DISTRICTS)]),
                "hour": pa.array(start + (idx // STATIONS).astype("timedelta64[h]")),
                "vehicles": rng.poisson(120, n).astype(np.int32),
                "speed": rng.normal(45.0, 12.0, n),
            }
        )
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        done += n
    if writer is not None:
        writer.close()


def traffic_spec(path: Path) -> TableSpec:
    return TableSpec(
        "traffic",
        (str(path),),
        "station",
        K,
        {
            "station": ColumnPolicy(ColumnKind.IDENTIFIER),
            "district": ColumnPolicy(ColumnKind.CATEGORY, public_keys=DISTRICTS),
            "hour": ColumnPolicy(ColumnKind.DATE),
            "vehicles": ColumnPolicy(ColumnKind.NUMERIC, 0.0, 1000.0),
            "speed": ColumnPolicy(ColumnKind.NUMERIC, 0.0, 200.0),
        },
        "bench",
    )
