"""Benchmark: countylab file ingest vs DuckDB's own CSV→Parquet COPY, side by side.

    .venv/bin/python bench/ingest_file.py --rows 1000000            # make bench size
    .venv/bin/python bench/ingest_file.py --rows 10000000 --pairs 3  # the issue's 10M-row figure

Generates a residents-like CSV (ids, names, dates, ints, floats, Chinese text), then runs the
contenders in turns (countylab, DuckDB, countylab, DuckDB, …: ``--pairs`` pairs), each in its own
child process so peak RSS (``os.wait4`` rusage) is per contender.  Each child times its own
operation: countylab's ``build_version`` (parse, validate, zstd Parquet version, fsync, manifest)
after schema inference, DuckDB's ``COPY (SELECT * FROM read_csv(..)) TO '..parquet'``; the child
wall times (interpreter start and imports included) are reported beside them.
``file_ingest_ratio_vs_duckdb`` = median over pairs of DuckDB s ÷ countylab s (throughput ratio:
both process the same rows; target ≥ 0.5).  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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
import sys, time
from pathlib import Path
from countylab.ingest import build_version, infer_schema, open_batches
from countylab.storage.warehouse import Warehouse
src, root = Path(sys.argv[1]), Path(sys.argv[2])
schema = infer_schema(src, "csv").schema
wh = Warehouse(root)
t = time.perf_counter()
v = build_version(wh, "bench", 1, None, open_batches(src, "csv", schema, tmp_dir=wh.scratch_dir),
                  "replace", None, schema)
print(v.row_count, time.perf_counter() - t)
"""

DUCKDB = """
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
t = time.perf_counter()
con.execute(f"COPY (SELECT * FROM read_csv('{sys.argv[1]}')) TO '{sys.argv[2]}/f.parquet' (FORMAT parquet)")
elapsed = time.perf_counter() - t
print(con.execute(f"SELECT count(*) FROM '{sys.argv[2]}/f.parquet'").fetchone()[0], elapsed)
"""


def run_child(code: str, *args: str) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stdout) of ``python -c code args``."""
    wall, rss, _cpu, output = run_child_cpu(code, *args)
    return wall, rss, output


def run_child_cpu(code: str, *args: str) -> tuple[float, float, float, str]:
    """Like :func:`run_child`, plus the child's user + system CPU seconds (all its threads).

    CPU seconds do not stretch when other processes share the cores, so their ratio is the
    steadier figure on a busy machine; wall time is what the target is about.
    """
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    output = proc.stdout.read().decode().strip()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child failed with {proc.returncode}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, output


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV rows (the issue's figure: 10000000)")
    parser.add_argument("--pairs", type=int, default=3, help="countylab/DuckDB runs taken in turns")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        csv_path = work / "residents.csv"
        generate(csv_path, args.rows)
        runs: dict[str, list[tuple[float, float, float, float]]] = {"countylab": [], "duckdb": []}
        for _ in range(args.pairs):
            for name, code in (("countylab", COUNTYLAB), ("duckdb", DUCKDB)):
                out_dir = work / name
                out_dir.mkdir()
                wall, rss, cpu, out = run_child_cpu(code, str(csv_path), str(out_dir))
                got, seconds = out.split()
                assert int(got) == args.rows, out
                runs[name].append((float(seconds), wall, rss, cpu))
                shutil.rmtree(out_dir)
        ratios = [d[0] / c[0] for c, d in zip(runs["countylab"], runs["duckdb"], strict=True)]
        wall_ratios = [d[1] / c[1] for c, d in zip(runs["countylab"], runs["duckdb"], strict=True)]
        cpu_ratios = [d[3] / c[3] for c, d in zip(runs["countylab"], runs["duckdb"], strict=True)]
        print(
            json.dumps(
                {
                    "rows": args.rows,
                    "csv_mb": round(csv_path.stat().st_size / 1e6, 1),
                    "pairs": args.pairs,
                    "countylab_s": round(_median([r[0] for r in runs["countylab"]]), 3),
                    "duckdb_s": round(_median([r[0] for r in runs["duckdb"]]), 3),
                    "countylab_rows_per_s": round(args.rows / _median([r[0] for r in runs["countylab"]])),
                    "duckdb_rows_per_s": round(args.rows / _median([r[0] for r in runs["duckdb"]])),
                    "file_ingest_ratio_vs_duckdb": round(_median(ratios), 3),
                    "file_ingest_ratios": [round(r, 3) for r in ratios],
                    "countylab_child_wall_s": round(_median([r[1] for r in runs["countylab"]]), 3),
                    "duckdb_child_wall_s": round(_median([r[1] for r in runs["duckdb"]]), 3),
                    "file_ingest_ratio_vs_duckdb_wall": round(_median(wall_ratios), 3),
                    # whole child, imports included: steadier than wall time on a shared machine
                    "countylab_child_cpu_s": round(_median([r[3] for r in runs["countylab"]]), 2),
                    "duckdb_child_cpu_s": round(_median([r[3] for r in runs["duckdb"]]), 2),
                    "file_ingest_cpu_ratio_vs_duckdb": round(_median(cpu_ratios), 3),
                    "peak_rss_mb": round(max(r[2] for r in runs["countylab"]), 1),
                    "duckdb_peak_rss_mb": round(max(r[2] for r in runs["duckdb"]), 1),
                    "target_ratio": 0.5,
                    "cpus": os.cpu_count(),
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                }
            )
        )


if __name__ == "__main__":
    main()
