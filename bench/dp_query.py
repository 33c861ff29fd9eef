"""Benchmark: DP query through the countylab engine (warm worker) vs the raw DuckDB query.

    .venv/bin/python bench/dp_query.py --rows 10000000

Prints one JSON line.  ``dp_vs_raw_duckdb`` is median DP time / median raw time (5 runs each);
the raw query reads the Parquet file directly, the DP query runs in the warm worker process
over the materialised, contribution-bounded table, including noise and time-bucket padding.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from countylab.privacy.engine import DPEngine
from countylab.privacy.spec import ColumnKind, ColumnPolicy, EngineSettings, SandboxLimits, TableSpec
from countylab.privacy.worker import WorkerRunner

TOWNS = tuple(f"镇{i:02d}" for i in range(12))
SQL = "SELECT town, COUNT(*), SUM(income), AVG(age) FROM residents GROUP BY town"


def generate(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    chunk = 2_000_000
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        table = pa.table(
            {
                "pid": np.arange(start, start + n, dtype=np.int64),
                "town": pa.array(np.array(TOWNS)[rng.integers(0, len(TOWNS), n)]),
                "income": rng.lognormal(10.0, 0.8, n),
                "age": rng.integers(0, 100, n, dtype=np.int32),
            }
        )
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def spec(path: Path) -> TableSpec:
    return TableSpec(
        "residents",
        (str(path),),
        "pid",
        1,
        {
            "pid": ColumnPolicy(ColumnKind.IDENTIFIER),
            "town": ColumnPolicy(ColumnKind.CATEGORY, public_keys=TOWNS),
            "income": ColumnPolicy(ColumnKind.NUMERIC, 0.0, 500_000.0),
            "age": ColumnPolicy(ColumnKind.NUMERIC, 0.0, 110.0),
        },
        "bench",
    )


def median_time(fn: object, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--bucket", type=float, default=0.05, help="timing-defence bucket in seconds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "residents.parquet"
        generate(path, args.rows)
        raw = duckdb.connect()
        raw.execute(f"SET threads=2; CREATE VIEW residents AS SELECT * FROM read_parquet('{path}')")
        raw.execute(SQL).fetchall()
        raw_s = median_time(lambda: raw.execute(SQL).fetchall())
        limits = SandboxLimits(memory_limit="4GB", threads=2, timeout_s=60.0)
        runner = WorkerRunner(limits)
        engine = DPEngine([spec(path)], EngineSettings(limits=limits, time_bucket_s=args.bucket), runner)
        try:
            t = time.perf_counter()
            engine.execute(engine.plan(SQL, 1.0))  # warm-up: materialise and bound once
            warm_s = time.perf_counter() - t
            dp_s = median_time(lambda: engine.execute(engine.plan(SQL, 1.0)))
        finally:
            engine.close()
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "rows": args.rows,
                "raw_duckdb_ms": round(raw_s * 1000, 1),
                "dp_ms": round(dp_s * 1000, 1),
                "dp_vs_raw_duckdb": round(dp_s / raw_s, 3),
                "time_bucket_ms": args.bucket * 1000,
                "worker_warmup_s": round(warm_s, 2),
                "peak_rss_mb_parent": round(self_kb / 1024, 1),
                "peak_rss_mb_worker": round(child_kb / 1024, 1),
                "speedup_vs_smartnoise": None,
                "speedup_vs_opendp_polars": None,
                "mre_ratio_vs_smartnoise": None,
                "api_p50_ms_1m": None,
            }
        )
    )


if __name__ == "__main__":
    main()
