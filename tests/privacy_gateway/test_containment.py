"""Containment through the API: the worker process, the watchdog, memory and result caps, timing.

A 2,000,000-row table ``big`` (one row per person ``pid``, a near-unique category ``g``) is
registered in the catalog and granted to the demo project; its catalog entry is real, its
Parquet file comes from a fake of our own ``PathSource`` interface (ingesting 2M rows would
only slow the test down).  Queries run in the gateway's real ``WorkerRunner`` process.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from countylab.catalog import service as catalog
from countylab.identity import projects as prj
from countylab.identity.access import SYSTEM
from countylab.privacy.gateway import QueryGateway
from countylab.privacy.limits import GatewayConfig
from countylab.privacy.spec import EngineSettings, SandboxLimits
from countylab.privacy.worker import WorkerRunner
from countylab.storage.models import Dataset
from tests.privacy_gateway.conftest import ELDERLY_SQL, ask, client_for, fast_gateway, principal, project_id

pytestmark = pytest.mark.slow

BIG_ROWS = 2_000_000


class BigPaths:
    """``PathSource`` that serves the real warehouse, except a big file for dataset ``big``."""

    def __init__(self, real: Any, big: Path) -> None:
        self.real, self.big = real, big

    def read_paths(self, ds: Dataset, version: int | None = None) -> list[Path]:
        return [self.big] if ds.name == "big" else self.real.read_paths(ds, version)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.parquet"
    duckdb.connect().execute(
        f"COPY (SELECT i AS pid, CAST(hash(i) % 1000003 AS VARCHAR) AS g, CAST(i % 100 AS BIGINT) AS x "
        f"FROM range({BIG_ROWS}) t(i)) TO '{path}' (FORMAT parquet)"
    )
    return path


def add_big(lab: Any, big_file: Path, tmp_path: Path) -> None:
    sample = tmp_path / "sample.parquet"
    pq.write_table(pa.table({"pid": [1, 2, 3], "g": ["a", "b", "c"], "x": [1, 2, 3]}), sample)
    steward, pid = principal(lab, "steward"), project_id(lab)
    with lab.tx() as s:
        ds = catalog.create_dataset(
            s,
            SYSTEM,
            name="big",
            title="big",
            privacy_unit="person",
            privacy_unit_column="pid",
            org_id=catalog.get_by_name(s, "residents").org_id,
        )
        ds_id = ds.id
    lab.ingestion.ingest_file(SYSTEM, ds_id, sample)
    with lab.tx() as s:
        catalog.set_column(s, steward, ds_id, "x", lower=0, upper=100)
        catalog.set_column(s, steward, ds_id, "pid", sensitive=True)
        catalog.set_grade(s, steward, ds_id, "general_4", "test table")
        prj.grant_dataset(s, SYSTEM, pid, ds_id)


WALL_CLOCK_S = 8.0


def worker_gateway(lab: Any, big_file: Path, **limits: Any) -> QueryGateway:
    settings = EngineSettings(limits=SandboxLimits(**limits), time_bucket_s=0.0)
    gateway = QueryGateway(
        lab.tx,
        BigPaths(lab.ingestion, big_file),
        settings,
        WorkerRunner(settings.limits, grace_s=5.0),
        GatewayConfig(wall_clock_s=WALL_CLOCK_S, rate_per_minute=1000, project_concurrency=8),
    )
    lab.gateway = gateway
    return gateway


def test_slow_query_is_interrupted_by_the_watchdog_and_the_worker_keeps_serving(demo_lab, big_file, tmp_path):
    add_big(demo_lab, big_file, tmp_path)
    gateway = worker_gateway(demo_lab, big_file, timeout_s=0.05)
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    try:
        t0 = time.monotonic()
        resp = ask(client, "SELECT g, COUNT(*) FROM big GROUP BY g", pid, 0.5)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == "query_failed"  # the one answer of every failure
        assert WALL_CLOCK_S - 0.5 < time.monotonic() - t0 < 60  # given when the wall clock ends
        # the charge stays (a timeout may depend on the data), the failure is logged and audited
        failed = client.get(f"/api/projects/{pid}/queries").json()["items"][0]
        assert failed["status"] == "failed" and failed["epsilon_spent"] == 0.5
        ok = ask(client, "SELECT COUNT(*) FROM big WHERE x > 50", pid, 0.5)
        assert ok.status_code == 200, ok.text
        assert abs(ok.json()["rows"][0][0] - BIG_ROWS * 49 / 100) < 100
    finally:
        gateway.close()


def test_huge_result_is_refused_and_memory_is_limited(demo_lab, big_file, tmp_path):
    add_big(demo_lab, big_file, tmp_path)
    gateway = worker_gateway(
        demo_lab, big_file, max_internal_groups=10_000, max_result_rows=100, memory_limit="512MB"
    )
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    try:
        resp = ask(client, "SELECT g, COUNT(*) FROM big GROUP BY g", pid, 0.5)
        # a million near-unique groups: no internal cap decides "error or answer" from the data any
        # more; DP partition selection releases none of them (each holds ~2 units)
        assert resp.status_code == 200, resp.text
        assert resp.json()["rows"] == []
        villages = ask(client, "SELECT village_code, COUNT(*) FROM residents GROUP BY village_code", pid, 0.1)
        assert villages.status_code == 413, villages.text  # 250 public keys > 100 result rows
        # the analyst-facing connection runs with the configured memory limit and no environment
        assert isinstance(gateway.runner, WorkerRunner)
        settings = gateway.runner.run([], ["SELECT current_setting('memory_limit')"], bounded=True)
        assert settings[0][0][0].replace(" ", "").startswith(("488", "512")), settings
        conn = gateway.runner._start()
        conn.send("env")
        assert conn.recv() == ("ok", {})  # no COUNTYLAB_DATABASE_URL, no credentials of any kind
    finally:
        gateway.close()


def test_timing_probe_sees_only_the_time_bucket(demo_lab):
    """Empty and full selections take the same padded time: the wall clock tells nothing."""
    fast_gateway(demo_lab, time_bucket_s=0.3)
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    times: dict[str, list[float]] = {"none": [], "all": []}
    for i in range(3):
        for key, where in (("none", f"age > {200 + i}"), ("all", f"age >= {-1 - i}")):
            t0 = time.monotonic()
            resp = ask(client, f"SELECT COUNT(*), AVG(income) FROM residents WHERE {where}", pid, 0.05)
            times[key].append(time.monotonic() - t0)
            assert resp.status_code == 200, resp.text
    assert min(min(v) for v in times.values()) >= 0.3  # padded, never the raw few milliseconds
    buckets = {k: math.floor(statistics.median(v) / 0.3) for k, v in times.items()}
    assert buckets["none"] == buckets["all"], times


def test_the_default_gateway_runs_in_a_worker_process(demo_lab):
    """``lab.gateway`` as the server builds it: a pool of spawned workers (``dp_query_workers``)."""
    from countylab.privacy.pool import WorkerPool

    demo_lab._gateway = None  # the fixture installs an in-process one; build the server's
    gateway = demo_lab.gateway
    assert isinstance(gateway.runner, WorkerPool)
    assert len(gateway.runner.runners) == demo_lab.settings.dp_query_workers == 2
    assert all(isinstance(r, WorkerRunner) for r in gateway.runner.runners)
    resp = ask(client_for(demo_lab, "developer"), ELDERLY_SQL, project_id(demo_lab), 0.5)
    assert resp.status_code == 200, resp.text
    procs = [r._proc for r in gateway.runner.runners if r._proc is not None]  # type: ignore[attr-defined]
    assert procs and all(p.is_alive() for p in procs)
    demo_lab.stop_background()  # what `countylab serve` does at shutdown
    assert not any(p.is_alive() for p in procs)
