"""SmartNoise SQL baseline for bench/dp_query.py; runs inside bench/.venv-smartnoise.

SmartNoise has no DuckDB reader, so a small DB-API shim lets its PostgreSQL reader (the SQL it
emits is standard enough) send the rewritten query to DuckDB over the same Parquet file.
SmartNoise charges ε per aggregate, so the per-aggregate ε is total ε ÷ its own reported cost
multiplier, and the total spent equals ours.  ``sample_max_ids`` is off: the data has one row per
person, so per-person reservoir sampling would only slow it down (its fastest honest setting).
Prints one JSON line: median time and the noisy answers of every run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from typing import Any

import duckdb
from snsql import Privacy, from_connection

SQL = "SELECT town, COUNT(*), SUM(income), AVG(age) FROM main.residents GROUP BY town"


class _Cursor:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.description: Any = None
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, *params: Any) -> None:
        result = self.con.execute(sql, *params)
        self.description = result.description
        self._rows = result.fetchall() if result.description else []

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def __iter__(self) -> Any:
        return iter(self._rows)


class DuckDbApi:
    """The few DB-API methods SmartNoise's reader calls, over one DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def cursor(self) -> _Cursor:
        return _Cursor(self.con)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass


def metadata(rows: int, income_max: float, age_max: float) -> dict[str, Any]:
    return {
        "bench": {
            "main": {
                "residents": {
                    "rows": rows,
                    "row_privacy": False,
                    "max_ids": 1,
                    "sample_max_ids": False,
                    "censor_dims": False,
                    "clamp_counts": False,
                    "clamp_columns": True,
                    "pid": {"type": "int", "private_id": True},
                    "town": {"type": "string"},
                    "income": {"type": "float", "lower": 0.0, "upper": income_max, "nullable": False},
                    "age": {"type": "int", "lower": 0, "upper": int(age_max), "nullable": False},
                }
            }
        }
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parquet", required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--epsilon", type=float, default=1.0, help="total ε of the query")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--income-max", type=float, default=500_000.0)
    ap.add_argument("--age-max", type=float, default=110.0)
    args = ap.parse_args()
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute("SET threads=2")
    con.execute(f"CREATE VIEW residents AS SELECT * FROM read_parquet('{args.parquet}')")
    meta = metadata(args.rows, args.income_max, args.age_max)
    probe = from_connection(
        DuckDbApi(con), engine="postgres", privacy=Privacy(epsilon=1.0, delta=0.0), metadata=meta
    )
    per_unit_eps, _ = probe.get_privacy_cost(SQL)
    multiplier = per_unit_eps / 1.0
    reader = from_connection(
        DuckDbApi(con),
        engine="postgres",
        privacy=Privacy(epsilon=args.epsilon / multiplier, delta=0.0),
        metadata=meta,
    )
    total_eps, total_delta = reader.get_privacy_cost(SQL)
    reader.execute(SQL)  # warm-up
    times, answers = [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        rows = reader.execute(SQL)
        times.append(time.perf_counter() - t)
        answers.append([[r[0], float(r[1]), float(r[2]), float(r[3])] for r in rows[1:]])
    print(
        json.dumps(
            {
                "engine": "smartnoise-sql",
                "median_s": statistics.median(times),
                "times_s": times,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "epsilon_total": total_eps,
                "delta_total": total_delta,
                "cost_multiplier": multiplier,
                "answers": answers,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
