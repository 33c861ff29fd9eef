"""Measurements of ``bench/dp_query.py`` that compare like with like (issue 9, "measured fairly").

* ``prepare`` vs DuckDB's own ``CREATE TABLE AS SELECT * FROM read_parquet(..)`` into a database
  file (both checkpointed, same threads and memory limit);
* the warm DP query (time-bucket padding off, and on) vs raw DuckDB over the **same prepared
  table** (the same file, ATTACHed read-only the way the worker does, same ENUMs), and vs raw
  DuckDB over the Parquet file;
* appending a pushed batch to a prepared version, at each table size;
* the worker's peak RSS (``VmHWM`` of the worker process), with the lab's default memory limit.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from countylab.config import Settings
from countylab.privacy.engine import DPEngine
from countylab.privacy.prepared import PreparedStore
from countylab.privacy.sandboxed_duckdb import open_prepared
from countylab.privacy.spec import EngineSettings, SandboxLimits, TableSpec
from countylab.privacy.worker import WorkerRunner

DEFAULT_MEMORY = str(Settings.model_fields["dp_memory_limit"].default)
THREADS = 2


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_rss_mb(pid: int | None) -> float | None:
    """High-water mark of a live process's resident memory (Linux ``VmHWM``)."""
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def duckdb_copy_s(parquet: Path, work: Path, memory: str) -> float:
    """DuckDB's own table copy of the Parquet file into a database file, checkpoint included."""
    target = work / "duckdb-copy.duckdb"
    target.unlink(missing_ok=True)
    con = duckdb.connect(str(target))
    con.execute(f"SET threads={THREADS}; SET memory_limit='{memory}'; SET preserve_insertion_order=false")
    con.execute(f"SET temp_directory='{work / 'copy-tmp'}'")
    t = time.perf_counter()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{parquet}')")
    con.execute("CHECKPOINT")
    took = time.perf_counter() - t
    con.close()
    target.unlink(missing_ok=True)
    return took


def raw_parquet_s(parquet: Path, table: str, sql: str, runs: int) -> float:
    raw = duckdb.connect()
    raw.execute(f"SET threads={THREADS}; SET enable_progress_bar=false")
    raw.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{parquet}')")
    raw.execute(sql).fetchall()
    took = median_time(lambda: raw.execute(sql).fetchall(), runs)
    raw.close()
    return took


def append_batch(parquet: Path, batch_path: Path, rows: int, unit: str, seed: int = 7) -> None:
    """A pushed batch: ``rows`` rows, one in five for an existing unit (its ranks must continue)."""
    src = pq.ParquetFile(parquet)
    first = src.read_row_group(0).slice(0, rows)
    units = first.column(unit).to_numpy(zero_copy_only=False).copy()
    rng = np.random.default_rng(seed)
    fresh = rng.random(rows) >= 0.2
    if units.dtype.kind in "iu":
        units[fresh] = units[fresh] + 10**12  # new units
    else:
        units = np.array([f"{u}-new" if f else u for u, f in zip(units, fresh, strict=True)], dtype=object)
    table = first.set_column(first.schema.get_field_index(unit), unit, pa.array(units))
    pq.write_table(table, batch_path)


def measure(
    *,
    work: Path,
    parquet: Path,
    spec: TableSpec,
    sql: str,
    raw_sql: str,
    epsilon: float,
    runs: int,
    bucket: float,
    batch_rows: int,
    memory: str = DEFAULT_MEMORY,
    keep_answers: bool = False,
    reps: int = 3,
    into: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every per-size figure of one table: copy, prepare, queries, append, worker memory.

    Figures land in ``into`` as they are taken, so a failure late on keeps the earlier ones.
    """
    data_dir = work / f"lab-{parquet.stem}"
    limits = SandboxLimits(memory_limit=memory, threads=THREADS, timeout_s=600.0, data_dir=str(data_dir))
    out: dict[str, Any] = into if into is not None else {}
    out.update({"rows": pq.ParquetFile(parquet).metadata.num_rows, "memory_limit": memory})
    out["raw_parquet_ms"] = round(raw_parquet_s(parquet, spec.name, raw_sql, runs) * 1000, 1)
    runner = WorkerRunner(limits)
    answers: list[list[list[Any]]] = []
    try:
        runner.run([], ["SELECT 1"])  # the worker is up: time the preparation alone
        copies, preps = [], []
        for i in range(reps):  # interleaved, so load from other processes hits both alike
            copies.append(duckdb_copy_s(parquet, work, memory))
            if i:
                shutil.rmtree(data_dir / "prepared", ignore_errors=True)
            t = time.perf_counter()
            runner.prepare([spec])
            preps.append(time.perf_counter() - t)
        out["duckdb_copy_s"] = round(statistics.median(copies), 3)
        out["prepare_s"] = round(statistics.median(preps), 3)
        out["prepare_vs_duckdb_copy"] = round(out["prepare_s"] / out["duckdb_copy_s"], 2)
        out["prepare_vs_duckdb_copy_each"] = [round(p / c, 2) for p, c in zip(preps, copies, strict=True)]
        plain = DPEngine([spec], EngineSettings(limits=limits, time_bucket_s=0.0), runner)
        padded = DPEngine([spec], EngineSettings(limits=limits, time_bucket_s=bucket), runner)
        plan = plain.plan(sql, epsilon)
        plain.execute(plan)  # warm the worker's connection and buffer pool

        def ask(engine: DPEngine) -> None:
            rows = engine.execute(engine.plan(sql, epsilon)).rows
            if keep_answers:
                answers.append([list(r) for r in rows])

        # Raw DuckDB over the same prepared file, opened the way the worker opens it; the three
        # contenders take turns, run by run, so a burst of load elsewhere hits all of them.
        store = PreparedStore(data_dir / "prepared", memory_limit=memory, threads=THREADS, seed=0)
        prep = store.load(store.key(spec))
        assert prep is not None
        raw = open_prepared(store, [(spec, prep)])
        raw.execute(raw_sql).fetchall()
        times: dict[str, list[float]] = {"raw": [], "dp": [], "padded": []}
        for _ in range(runs):
            times["raw"].append(median_time(lambda: raw.execute(raw_sql).fetchall(), 1))
            times["dp"].append(median_time(lambda: ask(plain), 1))
            times["padded"].append(median_time(lambda: ask(padded), 1))
        raw.close()
        out["raw_same_layout_ms"] = round(statistics.median(times["raw"]) * 1000, 1)
        out["dp_ms"] = round(statistics.median(times["dp"]) * 1000, 1)
        out["dp_padded_ms"] = round(statistics.median(times["padded"]) * 1000, 1)
        out["dp_vs_raw_duckdb_each"] = [
            round(d / r, 2) for d, r in zip(times["dp"], times["raw"], strict=True)
        ]
        out["worker_peak_mb"] = peak_rss_mb(runner.pid)
        if batch_rows:
            batch = work / f"{parquet.stem}-batch.parquet"
            append_batch(parquet, batch, batch_rows, spec.privacy_unit or spec.columns.__iter__().__next__())
            grown = replace(spec, paths=(*spec.paths, str(batch)), version=spec.version + "+1")
            t = time.perf_counter()
            runner.prepare([grown])
            out["append_rows"] = batch_rows
            out["append_ms"] = round((time.perf_counter() - t) * 1000, 1)
            check = DPEngine([grown], EngineSettings(limits=limits, time_bucket_s=0.0), runner)
            check.execute(check.plan(sql, epsilon))  # the appended version answers
    finally:
        runner.close()
    out["dp_vs_raw_duckdb"] = round(out["dp_ms"] / out["raw_same_layout_ms"], 3)
    out["dp_vs_raw_duckdb_padded"] = round(out["dp_padded_ms"] / out["raw_same_layout_ms"], 3)
    out["dp_vs_raw_parquet"] = round(out["dp_ms"] / out["raw_parquet_ms"], 3)
    spill = data_dir / "prepared" / "tmp"
    out["spilled_outside_data_dir"] = Path(".tmp").exists() or Path(work / ".tmp").exists()
    out["spill_dir"] = str(spill)
    if keep_answers:
        out["answers"] = answers
    return out
