"""Benchmark: p50 latency of a DP query through the HTTP API at 1,000,000 rows (not collected by pytest).

    .venv/bin/python -m tests.privacy_gateway.bench_api --rows 1000000

A live uvicorn server over a fresh lab; a ``bench`` dataset (一般1级, privacy unit ``pid``,
steward bounds on income and age, public key set for ``town``) ingested through the ordinary
path; the gateway as the server builds it (warm worker process, 50 ms time buckets).  The
benchmark query ``SELECT town, COUNT(*), SUM(income), AVG(age) … GROUP BY town`` runs 20 times at
ε=1, each with a different WHERE constant so that no answer comes from the cache (the cache is
never bypassed); the budget comes from two projects of 10 queries each.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from countylab.catalog import service as catalog
from countylab.identity import projects as prj
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from tests.browser import live_server
from tests.support import build_lab

TOWNS = [f"镇{i:02d}" for i in range(12)]
SQL = "SELECT town, COUNT(*), SUM(income), AVG(age) FROM bench WHERE age >= {c} GROUP BY town"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        n = args.rows
        pq.write_table(
            pa.table(
                {
                    "pid": np.arange(n, dtype=np.int64),
                    "town": pa.array(np.array(TOWNS)[rng.integers(0, len(TOWNS), n)]),
                    "income": rng.lognormal(10.0, 0.8, n).round(2),
                    "age": rng.integers(0, 100, n, dtype=np.int64),
                }
            ),
            root / "bench.parquet",
        )
        lab = build_lab(root)
        with lab.tx() as s:
            org = ids.create_org(s, SYSTEM, name="县统计局", kind="department")
            steward = ids.create_user(
                s,
                SYSTEM,
                username="steward",
                password="x" * 12,
                display_name="s",
                roles=["steward"],
                org_id=org.id,
            )
            dev = ids.create_user(
                s,
                SYSTEM,
                username="dev",
                password="x" * 12,
                display_name="d",
                roles=["developer"],
                org_id=org.id,
            )
            ds = catalog.create_dataset(
                s,
                SYSTEM,
                name="bench",
                title="bench",
                org_id=org.id,
                privacy_unit="person",
                privacy_unit_column="pid",
            )
            ds_id, dev_id, steward_id = ds.id, dev.id, steward.id
        t0 = time.perf_counter()
        lab.ingestion.ingest_file(SYSTEM, ds_id, root / "bench.parquet")
        ingest_s = time.perf_counter() - t0
        with lab.tx() as s:
            sp = ids.principal_for(s, ids.get_user(s, steward_id), "system")
            catalog.upsert_key_set(s, SYSTEM, name="bench.town", title="towns", values=TOWNS)
            catalog.set_column(s, sp, ds_id, "town", key_set="bench.town")
            catalog.set_column(s, sp, ds_id, "income", lower=0, upper=500_000)
            catalog.set_column(s, sp, ds_id, "age", lower=0, upper=110)
            catalog.set_grade(s, sp, ds_id, "general_1", "benchmark data")
            dp = ids.principal_for(s, ids.get_user(s, dev_id), "system")
            projects = [prj.create_project(s, dp, slug=f"bench-{i}", title=f"bench {i}").id for i in range(3)]
            for p in projects:
                prj.grant_dataset(s, SYSTEM, p, ds_id)
            token = ids.create_token(s, SYSTEM, user_id=dev_id, name="bench", days=1).token
        times: list[float] = []
        try:
            with (
                live_server(lab) as url,
                httpx.Client(base_url=url, timeout=300, headers={"Authorization": f"Bearer {token}"}) as c,
            ):
                t0 = time.perf_counter()
                warm = c.post(
                    "/api/query", json={"sql": SQL.format(c=-1), "epsilon": 1.0, "project_id": projects[0]}
                )
                first_s = time.perf_counter() - t0
                assert warm.status_code == 200, warm.text
                for i in range(20):
                    body = {"sql": SQL.format(c=-2 - i), "epsilon": 1.0, "project_id": projects[1 + i // 10]}
                    t0 = time.perf_counter()
                    resp = c.post("/api/query", json=body)
                    times.append(time.perf_counter() - t0)
                    assert resp.status_code == 200 and not resp.json()["cached"], resp.text
        finally:
            lab.close()
    print(
        json.dumps(
            {
                "bench": "dp_query_api",
                "rows": args.rows,
                "runs": len(times),
                "epsilon": 1.0,
                "p50_ms": round(statistics.median(times) * 1000, 1),
                "p90_ms": round(sorted(times)[int(len(times) * 0.9) - 1] * 1000, 1),
                "min_ms": round(min(times) * 1000, 1),
                "first_query_ms": round(first_s * 1000, 1),
                "ingest_s": round(ingest_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
