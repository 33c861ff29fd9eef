"""OpenDP Polars API baseline for bench/dp_query.py; runs inside bench/.venv-opendp-polars.

Same query, same total ε (one compositor query over the whole budget; OpenDP splits it between
the three aggregates), same clamping bounds, town keys declared public like our engine's
``public_keys``.  Prints one JSON line: median time and the noisy answers of every run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from typing import Any

import opendp.prelude as dp
import polars as pl

dp.enable_features("contrib")


def query(path: str, rows: int, groups: int, epsilon: float, income_max: float, age_max: float) -> Any:
    context = dp.Context.compositor(
        data=pl.scan_parquet(path).select("town", "income", pl.col("age").cast(pl.Float64)),
        privacy_unit=dp.unit_of(contributions=1),
        privacy_loss=dp.loss_of(epsilon=epsilon),
        split_evenly_over=1,
        margins=[
            dp.polars.Margin(by=[], max_length=rows),
            dp.polars.Margin(by=["town"], invariant="keys", max_length=rows, max_groups=groups),
        ],
    )
    return (
        context.query()
        .group_by("town")
        .agg(
            dp.len(),
            pl.col("income").fill_null(0.0).dp.sum((0.0, income_max)),
            pl.col("age").fill_null(0.0).dp.mean((0.0, age_max)),
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parquet", required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--epsilon", type=float, default=1.0, help="total ε of the query")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--groups", type=int, default=12, help="number of towns (public)")
    ap.add_argument("--income-max", type=float, default=500_000.0)
    ap.add_argument("--age-max", type=float, default=110.0)
    args = ap.parse_args()
    pl.Config.set_streaming_chunk_size(1 << 20)
    settings = (args.parquet, args.rows, args.groups, args.epsilon, args.income_max, args.age_max)
    query(*settings).release().collect()  # warm-up
    times, answers = [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        # a fresh context per run: each release spends the whole ε, as our engine's query does
        q = query(*settings)
        frame = q.release().collect()
        times.append(time.perf_counter() - t)
        answers.append([[r[0], float(r[1]), float(r[2]), float(r[3])] for r in frame.rows()])
    summary = query(*settings).summarize()
    print(
        json.dumps(
            {
                "engine": "opendp-polars",
                "median_s": statistics.median(times),
                "times_s": times,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "epsilon_total": args.epsilon,
                "summary": str(summary),
                "answers": answers,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
