"""Benchmark: countylab file ingest vs DuckDB's own CSV→Parquet COPY, side by side.

    .venv/bin/python bench/ingest_file.py --rows 1000000

Generates a residents-like CSV (ids, names, dates, ints, floats, Chinese text), then runs each
contender in its own child process so peak RSS (``os.wait4`` rusage) is per contender.  Prints
one JSON line; ``file_ingest_ratio_vs_duckdb`` is countylab throughput ÷ DuckDB throughput
(= duckdb_s / countylab_s, as both process the same rows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

TOWNS = ["城关镇", "东山乡", "西河镇", "南湖街道", "北岭乡", "青石镇", "白马乡", "新华街道"]
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英")


def generate(path: Path, rows: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    chunk = 500_000
    with path.open("wb") as out:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ids = np.arange(start + 1, start + n + 1)
            names = np.char.add(
                np.array(SURNAMES)[rng.integers(0, len(SURNAMES), n)],
                np.array(GIVEN)[rng.integers(0, len(GIVEN), n)],
            )
            birth = np.datetime64("1930-01-01") + rng.integers(0, 33000, n).astype("timedelta64[D]")
            table = pa.table(
                {
                    "resident_id": pa.array(ids),
                    "name": pa.array(names.tolist()),
                    "birth_date": pa.array(birth.astype(str).tolist()),
                    "household_size": pa.array(rng.integers(1, 9, n)),
                    "income": pa.array(np.round(rng.lognormal(10, 0.6, n), 2)),
                    "town": pa.array(np.array(TOWNS)[rng.integers(0, len(TOWNS), n)].tolist()),
                    "insured": pa.array(rng.random(n) < 0.9),
                }
            )
            pa_csv.write_csv(table, out, pa_csv.WriteOptions(include_header=start == 0))


COUNTYLAB = """
import sys
from pathlib import Path
from countylab.ingest import build_version, infer_schema, open_batches
from countylab.storage.warehouse import Warehouse
src, root = Path(sys.argv[1]), Path(sys.argv[2])
schema = infer_schema(src, "csv").schema
wh = Warehouse(root)
v = build_version(wh, "bench", 1, None, open_batches(src, "csv", schema, tmp_dir=wh.scratch_dir),
                  "replace", None, schema)
print(v.row_count)
"""

DUCKDB = """
import sys, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"COPY (SELECT * FROM read_csv('{sys.argv[1]}')) TO '{sys.argv[2]}/f.parquet' (FORMAT parquet)")
print(con.execute(f"SELECT count(*) FROM '{sys.argv[2]}/f.parquet'").fetchone()[0])
"""


def run_child(code: str, *args: str) -> tuple[float, float, str]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    output = proc.stdout.read().decode().strip()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child failed with {proc.returncode}")
    return elapsed, usage.ru_maxrss / 1024, output


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        csv_path = work / "residents.csv"
        generate(csv_path, args.rows)
        (work / "wh").mkdir()
        (work / "duck").mkdir()
        countylab_s, countylab_rss, got = run_child(COUNTYLAB, str(csv_path), str(work / "wh"))
        assert int(got) == args.rows, got
        duckdb_s, duckdb_rss, got = run_child(DUCKDB, str(csv_path), str(work / "duck"))
        assert int(got) == args.rows, got
        print(
            json.dumps(
                {
                    "rows": args.rows,
                    "csv_mb": round(csv_path.stat().st_size / 1e6, 1),
                    "countylab_s": round(countylab_s, 2),
                    "duckdb_s": round(duckdb_s, 2),
                    "file_ingest_ratio_vs_duckdb": round(duckdb_s / countylab_s, 3),
                    "peak_rss_mb": round(countylab_rss, 1),
                    "duckdb_peak_rss_mb": round(duckdb_rss, 1),
                    "cpus": os.cpu_count(),
                }
            )
        )


if __name__ == "__main__":
    main()
