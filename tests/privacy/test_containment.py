"""Attack cases: each must fail for the attacker, at the parser and again at the locked engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from countylab.errors import TooLarge, UserError, ValidationFailed
from countylab.privacy.engine import DPEngine
from countylab.privacy.sandboxed_duckdb import QueryTimeout, open_sandbox, run_select
from countylab.privacy.spec import SandboxLimits
from countylab.privacy.worker import WorkerRunner

from .conftest import engine_for, residents_spec

ATTACKS = [
    "SELECT count(*) FROM read_csv('/etc/passwd')",
    "SELECT count(*) FROM '/etc/passwd'",
    "SELECT count(*) FROM read_parquet('/tmp/*.parquet')",
    "SELECT count(*) FROM glob('/etc/*')",
    "COPY residents TO '/tmp/out.csv'",
    "ATTACH '/tmp/evil.db' AS evil",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "PRAGMA version",
    "SELECT count(*) FROM residents; SELECT count(*) FROM residents",
    "SELECT income FROM residents",
    "SELECT * FROM residents",
    "SELECT count(*), * FROM residents",
    "SELECT sum(pid) FROM residents",
    "SELECT avg(pid) FROM residents",
    "SELECT count(DISTINCT id_number) FROM residents",
    "SELECT id_number, count(*) FROM residents GROUP BY id_number",
    "SELECT pid, count(*) FROM residents GROUP BY pid",
    "SELECT substring(id_number, 1, 6) AS r, count(*) FROM residents GROUP BY r",
    "SELECT count(*) FROM (SELECT * FROM residents)",
    "WITH t AS (SELECT * FROM residents) SELECT count(*) FROM t",
    "SELECT count(*) FROM residents UNION SELECT count(*) FROM residents",
    "SELECT town, count(*) FROM residents GROUP BY town HAVING count(*) < 3",
    "SELECT count(*) FROM residents WHERE income > (SELECT max(income) FROM residents)",
    "SELECT count(*) FROM other_table",
    "SELECT count(*) FROM main.residents",
    "SELECT sum(income) OVER () FROM residents",
    "SELECT count(*) FROM residents r JOIN residents s ON r.town = s.town",
    "SELECT sum(income * 1000) FROM residents",
    "SELECT count(*) FROM residents WHERE getenv('HOME') = 'x'",
    "SELECT count(*) FROM residents, households",
    "SELECT DISTINCT town, count(*) FROM residents GROUP BY town",
]


@pytest.mark.parametrize("sql", ATTACKS)
def test_attack_is_refused_before_any_data_is_read(engine: DPEngine, sql: str) -> None:
    with pytest.raises(ValidationFailed):
        engine.plan(sql, 1.0)


RAW = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    "COPY (SELECT 1) TO '/tmp/countylab_dp_probe.csv'",
    "ATTACH '/tmp/countylab_dp_probe.db' AS x",
    "SET enable_external_access = true",
    "INSTALL httpfs",
]


@pytest.mark.parametrize("sql", RAW)
def test_locked_connection_refuses_even_if_parser_were_bypassed(data_dir: Path, sql: str) -> None:
    con = open_sandbox([residents_spec(data_dir / "residents.parquet")], SandboxLimits(memory_limit="256MB"))
    import duckdb

    with pytest.raises(duckdb.Error):
        con.execute(sql)
    assert not os.path.exists("/tmp/countylab_dp_probe.csv")
    # python replacement scans are off: a local DataFrame is not a table
    frame = {"a": [1]}  # noqa: F841
    with pytest.raises(duckdb.Error):
        con.execute("SELECT * FROM frame")


def test_run_select_refuses_non_select_and_multiple(data_dir: Path) -> None:
    con = open_sandbox([residents_spec(data_dir / "residents.parquet")], SandboxLimits(memory_limit="256MB"))
    with pytest.raises(ValidationFailed):
        run_select(con, "SELECT 1; SELECT 2", 5.0, 10)
    with pytest.raises(ValidationFailed):
        run_select(con, "PRAGMA version", 5.0, 10)


def test_watchdog_interrupts_a_very_slow_query(data_dir: Path) -> None:
    con = open_sandbox([residents_spec(data_dir / "residents.parquet")], SandboxLimits(memory_limit="256MB"))
    with pytest.raises(QueryTimeout):
        run_select(con, "SELECT count(*) FROM range(10000000000) a WHERE a.range % 7 = 3", 0.3, 10)
    assert run_select(con, "SELECT count(*) FROM residents", 5.0, 10) == [(3000,)]  # still usable


def test_engine_watchdog_on_slow_analyst_query(data_dir: Path) -> None:
    eng = engine_for(residents_spec(data_dir / "residents.parquet"), timeout_s=0.0005)
    plan = eng.plan(
        "SELECT village, count(*), median(income), stddev(age) FROM residents GROUP BY village", 1.0
    )
    with pytest.raises(UserError):  # QueryTimeout (a UserError) on any machine speed
        for _ in range(50):
            eng.execute(plan)


def test_huge_result_is_capped(data_dir: Path) -> None:
    eng = engine_for(residents_spec(data_dir / "residents.parquet"), max_rows=3)
    with pytest.raises(TooLarge):
        eng.execute(eng.plan("SELECT town, count(*) FROM residents GROUP BY town", 1.0))
    eng = engine_for(residents_spec(data_dir / "residents.parquet"), max_rows=2)
    plan = eng.plan("SELECT village, count(*) FROM residents GROUP BY village", 1.0)  # keys not public
    # three villages survive partition selection: the two with the largest noisy counts are
    # released (post-processing), never an error whose presence would depend on the data
    assert len(eng.execute(plan).rows) == 2


def test_worker_process_runs_queries_and_holds_no_parent_environment(data_dir: Path) -> None:
    spec = residents_spec(data_dir / "residents.parquet")
    runner = WorkerRunner(SandboxLimits(memory_limit="256MB", timeout_s=0.3))
    try:
        rows = runner.run([spec], ["SELECT count(*) FROM residents"], bounded=True)
        assert rows == [[(3000,)]]
        assert runner._proc is not None and runner._proc.pid != os.getpid()
        assert runner._conn is not None
        runner._conn.send("env")
        assert runner._conn.recv() == ("ok", {})  # no inherited credentials
        with pytest.raises(QueryTimeout):
            runner.run(
                [spec], ["SELECT count(*) FROM range(10000000000) a WHERE a.range % 7 = 3"], bounded=True
            )
        with pytest.raises(UserError):
            runner.run([spec], ["SELECT * FROM read_csv('/etc/passwd')"], bounded=True)
        assert runner.run([spec], ["SELECT count(*) FROM residents"], bounded=True) == [[(3000,)]]
    finally:
        runner.close()
