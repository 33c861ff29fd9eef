"""Prepared versions: the layout the engine relies on, reuse across runners, appends, containment."""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from countylab.errors import UserError
from countylab.privacy import prepared_build
from countylab.privacy.prepared import PreparedStore
from countylab.privacy.spec import SandboxLimits, TableSpec
from countylab.privacy.worker import InProcessRunner, WorkerRunner, sandbox_limits

from .conftest import households_spec, make_residents, residents_spec


def _limits(lab: Path, **kw: object) -> SandboxLimits:
    return SandboxLimits(memory_limit="256MB", data_dir=str(lab), **kw)  # type: ignore[arg-type]


def _spec(paths: list[Path], version: str) -> TableSpec:
    base = residents_spec(paths[0], version=version, k=3)
    return TableSpec(base.name, tuple(str(p) for p in paths), "pid", 3, base.columns, version)


def _ranks_are_row_numbers(runner: InProcessRunner, spec: TableSpec) -> None:
    bad = runner.run(
        [spec],
        [
            "SELECT count(*) FROM (SELECT pid, count(*) AS n, max(__rank) AS hi, min(__rank) AS lo, "
            "count(DISTINCT __rank) AS d FROM residents GROUP BY pid) WHERE hi <> n OR lo <> 1 OR d <> n"
        ],
    )
    assert bad == [[(0,)]]


def test_prepared_table_has_the_interface_columns_and_keeps_every_row(data_dir: Path, tmp_path: Path) -> None:
    runner = InProcessRunner(_limits(tmp_path))
    heavy = residents_spec(data_dir / "heavy.parquet", k=1)
    hh = households_spec(data_dir / "households.parquet")
    try:
        runner.prepare([heavy, hh])
        described = runner.run([heavy], ["DESCRIBE residents"])[0]
        types = {r[0]: r[1] for r in described}
        assert types["__c_income"] == "DOUBLE" and types["__c_age"] == "DOUBLE"
        assert types["__rank"] == "INTEGER" and types["__h"] == "UBIGINT"
        assert types["town"].startswith("ENUM(") and types["pid"] == "BIGINT"
        assert "__c_pid" not in types and "__c_town" not in types
        # no truncation: the heavy unit keeps its 41 rows, ranked 1..41 by the seeded hash
        rows = runner.run([heavy], ["SELECT count(*), max(__rank) FROM residents WHERE pid = 99999"])
        assert rows == [[(40, 40)]]
        assert runner.run([heavy], ["SELECT count(*) FROM residents"]) == [[(3040,)]]
        _ranks_are_row_numbers(runner, heavy)
        # clamped copies: bounds respected, NULL would be the midpoint
        lo_hi = runner.run([heavy], ["SELECT min(__c_income), max(__c_income) FROM residents"])[0][0]
        assert lo_hi[0] >= 0.0 and lo_hi[1] == 200_000.0
        # a table without a unit is not deduplicated any more: 1000 + 5 duplicate keys
        assert runner.run([hh], ["SELECT count(*), max(__rank) FROM households"]) == [[(1005, 1)]]
    finally:
        runner.close()


def test_hash_is_seeded(data_dir: Path, tmp_path: Path) -> None:
    spec = residents_spec(data_dir / "residents.parquet")
    sql = "SELECT __h FROM residents ORDER BY pid LIMIT 5"
    a, b = InProcessRunner(_limits(tmp_path / "a"), 1), InProcessRunner(_limits(tmp_path / "b"), 2)
    try:
        assert a.run([spec], [sql]) != b.run([spec], [sql])
        assert a.run([spec], [sql]) == a.run([spec], [sql])
    finally:
        a.close()
        b.close()


def test_versions_are_prepared_once_in_the_data_dir_and_reused_by_a_new_worker(
    data_dir: Path, tmp_path: Path
) -> None:
    spec = residents_spec(data_dir / "residents.parquet")
    first = WorkerRunner(_limits(tmp_path))
    try:
        first.prepare([spec])
        temp_dir, external, locked = first.run(
            [spec],
            [
                "SELECT current_setting('temp_directory'), current_setting('enable_external_access'), "
                "current_setting('lock_configuration')"
            ],
        )[0][0]
    finally:
        first.close()
    assert Path(temp_dir).is_relative_to(tmp_path / "prepared" / "tmp")
    assert external is False and locked is True
    files = sorted((tmp_path / "prepared").glob("*.duckdb"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    second = WorkerRunner(_limits(tmp_path))  # a restarted worker: nothing prepared again
    try:
        assert second.run([spec], ["SELECT count(*) FROM residents"]) == [[(3000,)]]
    finally:
        second.close()
    assert sorted((tmp_path / "prepared").glob("*.duckdb")) == files
    assert files[0].stat().st_mtime_ns == stamp
    assert not list((tmp_path / "prepared").glob(".*.tmp"))  # no half-written file left


def test_append_prepares_only_the_new_rows_and_continues_each_units_ranks(tmp_path: Path) -> None:
    res = make_residents(2000)
    res["pid"] = res["pid"] % 700  # units with several rows
    first, batch = tmp_path / "part-0.parquet", tmp_path / "batch.parquet"
    res.to_parquet(first)
    more = make_residents(300, seed=5)
    more["pid"] = more["pid"] % 900  # old units (ranks continue) and new ones (ranks from 1)
    more.to_parquet(batch)
    runner = InProcessRunner(_limits(tmp_path / "lab"))
    v1, v2 = _spec([first], "1"), _spec([first, batch], "2")
    try:
        runner.prepare([v1])
        runner.prepare([v2])
        store = runner._tables.store
        prep = store.load(store.key(v2))
        assert prep is not None and [layer.rows for layer in prep.layers] == [2000, 300]
        assert runner.run([v2], ["SELECT count(*) FROM residents"]) == [[(2300,)]]
        _ranks_are_row_numbers(runner, v2)
        # the earlier version is untouched (AS OF still answers from it)
        assert runner.run([v1], ["SELECT count(*) FROM residents"]) == [[(2000,)]]
        # same clamped values and hashes as a full preparation of the same files
        full = InProcessRunner(_limits(tmp_path / "other"))
        try:
            sql = (
                "SELECT sum(round(__c_income * 100)::BIGINT), sum(__c_age), sum(__h::HUGEINT), count(*) "
                "FROM residents"
            )
            assert runner.run([v2], [sql]) == full.run([v2], [sql])
        finally:
            full.close()
    finally:
        runner.close()


def test_a_hard_linked_part_is_the_same_file_and_a_new_category_forces_a_full_preparation(
    tmp_path: Path,
) -> None:
    res = make_residents(1000)
    v1_dir, v2_dir = tmp_path / "v1", tmp_path / "v2"
    v1_dir.mkdir()
    v2_dir.mkdir()
    res.to_parquet(v1_dir / "part-00000.parquet")
    os.link(v1_dir / "part-00000.parquet", v2_dir / "part-00000.parquet")  # like a compaction
    extra = make_residents(50, seed=9)
    extra["pid"] += 5000
    extra.to_parquet(v2_dir / "part-00001.parquet")
    runner = InProcessRunner(_limits(tmp_path / "lab"))
    v1 = _spec([v1_dir / "part-00000.parquet"], "1")
    v2 = _spec([v2_dir / "part-00000.parquet", v2_dir / "part-00001.parquet"], "2")
    try:
        runner.prepare([v1, v2])
        store = runner._tables.store
        prep = store.load(store.key(v2))
        assert prep is not None and [layer.rows for layer in prep.layers] == [1000, 50]
        newcat = make_residents(20, seed=3)
        newcat["town"] = "新设镇"  # not in the base's ENUM
        newcat.to_parquet(v2_dir / "part-00002.parquet")
        v3 = _spec([*map(Path, v2.paths), v2_dir / "part-00002.parquet"], "3")
        runner.prepare([v3])
        prep3 = store.load(store.key(v3))
        assert prep3 is not None and [layer.rows for layer in prep3.layers] == [1070]
        assert runner.run([v3], ["SELECT count(*) FROM residents WHERE town = '新设镇'"]) == [[(20,)]]
    finally:
        runner.close()


def test_many_appends_are_merged_into_one_delta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepared_build, "MAX_DELTAS", 2)
    base = make_residents(1000)
    base.to_parquet(tmp_path / "b.parquet")
    paths = [tmp_path / "b.parquet"]
    runner = InProcessRunner(_limits(tmp_path / "lab"))
    try:
        for i in range(4):
            batch = make_residents(10, seed=i)
            batch["pid"] = batch["pid"] % 4  # the same four units every time
            batch.to_parquet(tmp_path / f"s{i}.parquet")
            paths.append(tmp_path / f"s{i}.parquet")
            runner.prepare([_spec(paths, str(i + 2))])
        spec = _spec(paths, "5")
        store = runner._tables.store
        prep = store.load(store.key(spec))
        assert prep is not None and len(prep.layers) <= 3 and prep.rows == 1040
        top = runner.run([spec], ["SELECT max(__rank) FROM residents WHERE pid = 0"])
        assert top == [[(13,)]]  # 1 row in the base + 3 in each batch
        _ranks_are_row_numbers(runner, spec)
    finally:
        runner.close()


def test_a_failed_preparation_is_a_user_error_and_leaves_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet PAR1")
    runner = InProcessRunner(_limits(tmp_path / "lab"))
    try:
        with pytest.raises(UserError):
            runner.prepare([residents_spec(broken)])
        with pytest.raises(UserError):
            runner.prepare([residents_spec(tmp_path / "missing.parquet")])
    finally:
        runner.close()
    left = [p for p in (tmp_path / "lab" / "prepared").iterdir() if p.name != "tmp" and p.suffix != ".lock"]
    assert left == []  # no version, no half-written file


def test_locked_connection_reaches_no_other_file(data_dir: Path, tmp_path: Path) -> None:
    """Only the attached layers are readable: not another version, not the Parquet, not the folder.

    (DuckDB lets a locked connection read the files it attached itself; they hold only the
    permitted table, which the connection can read anyway.)
    """
    spec = residents_spec(data_dir / "residents.parquet")
    hh = households_spec(data_dir / "households.parquet")
    runner = InProcessRunner(_limits(tmp_path))
    try:
        runner.prepare([spec, hh])
        store = runner._tables.store
        other = store.path(store.get(hh).layers[0].file)
        con = runner._tables.connection([spec])
        for sql in (
            f"SELECT * FROM read_parquet('{spec.paths[0]}')",
            f"SELECT * FROM read_blob('{other}')",
            f"SELECT * FROM read_text('{store.root}/*')",
            f"SELECT * FROM glob('{store.root}/*')",
            f"ATTACH '{other}' AS again (READ_ONLY)",
            f"COPY (SELECT 1) TO '{store.root}/x.csv'",
            "SET memory_limit='100GB'",
            "SET temp_directory='/tmp'",
            "SET enable_external_access=true",
            "INSERT INTO residents SELECT * FROM residents",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
        with pytest.raises(duckdb.Error):
            con.execute("SELECT count(*) FROM households")
        assert not (store.root / "x.csv").exists()
    finally:
        runner.close()


def test_limits_come_from_the_lab_settings(tmp_path: Path) -> None:
    from countylab.config import Settings

    limits = sandbox_limits(Settings(data_dir=tmp_path), timeout_s=5.0)
    assert limits.data_dir == str(tmp_path.resolve()) and limits.memory_limit == "640MB"
    assert limits.timeout_s == 5.0
    store = PreparedStore.for_limits(limits, 0)
    assert store.root == tmp_path.resolve() / "prepared"


def test_prepared_rows_equal_the_parquet_rows(tmp_path: Path) -> None:
    df = make_residents(500)
    df.loc[3, "income"] = None
    df.to_parquet(tmp_path / "r.parquet")
    spec = residents_spec(tmp_path / "r.parquet")
    runner = InProcessRunner(_limits(tmp_path / "lab"))
    try:
        sql = "SELECT pid, town::VARCHAR, income, __c_income FROM residents ORDER BY pid"
        got = runner.run([spec], [sql])[0]
    finally:
        runner.close()
    frame = pd.DataFrame(got, columns=["pid", "town", "income", "c"])
    assert frame["pid"].tolist() == df["pid"].tolist() and frame["town"].tolist() == df["town"].tolist()
    assert frame.loc[3, "c"] == 100_000.0  # NULL → the bounds' midpoint
    assert frame["c"].max() <= 200_000.0


def test_gc_removes_idle_versions_and_keeps_shared_layers(tmp_path: Path) -> None:
    res = make_residents(500)
    res.to_parquet(tmp_path / "a.parquet")
    make_residents(20, seed=4).to_parquet(tmp_path / "b.parquet")
    v1, v2 = (
        _spec([tmp_path / "a.parquet"], "1"),
        _spec([tmp_path / "a.parquet", tmp_path / "b.parquet"], "2"),
    )
    runner = InProcessRunner(_limits(tmp_path / "lab"))
    try:
        runner.prepare([v1, v2])
        store = runner._tables.store
        old = time.time() - 30 * 86400
        os.utime(store.root / f"{store.key(v1)}.json", (old, old))  # v1 idle for a month
        removed = store.gc()
        assert f"{store.key(v1)}.json" in removed
        assert store.load(store.key(v1)) is None
        assert store.load(store.key(v2)) is not None  # still complete: its base layer was kept
        assert runner.run([v2], ["SELECT count(*) FROM residents"]) == [[(520,)]]
    finally:
        runner.close()


def test_query_time_metadata_and_renamed_files_reuse_the_prepared_version(tmp_path: Path) -> None:
    make_residents(300).to_parquet(tmp_path / "a.parquet")
    os.link(tmp_path / "a.parquet", tmp_path / "a-again.parquet")
    runner = InProcessRunner(_limits(tmp_path / "lab"))
    try:
        runner.prepare([residents_spec(tmp_path / "a.parquet", k=1)])
        runner.prepare([residents_spec(tmp_path / "a.parquet", k=5)])  # k is applied at query time
        runner.prepare([residents_spec(tmp_path / "a-again.parquet", k=1)])  # the same file, linked
        assert len(list((tmp_path / "lab" / "prepared").glob("*.duckdb"))) == 1
        assert runner.run(
            [residents_spec(tmp_path / "a-again.parquet")], ["SELECT count(*) FROM residents"]
        ) == [[(300,)]]
    finally:
        runner.close()


def test_work_larger_than_memory_spills_only_inside_the_data_dir(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # DuckDB's default spill folder would be ./.tmp
    spec = residents_spec(data_dir / "residents.parquet")
    runner = InProcessRunner(
        SandboxLimits(memory_limit="48MB", data_dir=str(tmp_path / "lab"), timeout_s=120)
    )
    try:
        sql = "SELECT count(*) FROM (SELECT range % 2000003 AS k, count(*) FROM range(6000000) GROUP BY k)"
        assert runner.run([spec], [sql]) == [[(2000003,)]]
        setting = runner.run([spec], ["SELECT current_setting('temp_directory')"])[0][0][0]
    finally:
        runner.close()
    assert Path(setting).is_relative_to(tmp_path / "lab" / "prepared" / "tmp")
    assert not (tmp_path / ".tmp").exists()


def test_row_integers_are_prepared_in_full_and_appended_layers_alike(tmp_path: Path) -> None:
    """``__i_<col>`` is ``fixedpoint.row_int_sql`` over ``__c_<col>``, row by row, in every layer.

    Values the clamp must absorb (NULL, NaN, ±inf, far outside the bounds) are in both the base
    and the appended batch, so preparing never fails on a row and the integers stay in range.
    """
    from countylab.privacy.fixedpoint import encoding, row_int_sql

    res = make_residents(1500)
    res["pid"] = res["pid"] % 600
    res["income"] = res["income"].astype(float)
    res.loc[2:5, "income"] = [float("nan"), float("inf"), -float("inf"), -5e300]
    res["age"] = res["age"].astype(float)
    res.loc[6, "age"] = None
    first, batch = tmp_path / "part-0.parquet", tmp_path / "batch.parquet"
    res.to_parquet(first)
    more = make_residents(200, seed=9)
    more["pid"] = more["pid"] % 800
    more["income"] = more["income"].astype(float)
    more.loc[0:2, "income"] = [float("nan"), 1e308, -1.0]
    more["age"] = more["age"].astype(float)
    more.to_parquet(batch)
    runner = InProcessRunner(_limits(tmp_path / "lab"))
    v1, v2 = _spec([first], "1"), _spec([first, batch], "2")
    try:
        runner.prepare([v1])
        runner.prepare([v2])
        store = runner._tables.store
        prep = store.load(store.key(v2))
        assert prep is not None and len(prep.layers) == 2  # the batch is a layer, not a re-preparation
        for col in ("income", "age"):
            b = v2.columns[col].bounds()
            assert b is not None
            enc = encoding(b)
            types = {r[0]: r[1] for r in runner.run([v2], ["DESCRIBE residents"])[0]}
            assert types[f"__i_{col}"] == "INTEGER"
            check = (
                f"SELECT count(*), count(*) FILTER (WHERE __i_{col} IS DISTINCT FROM "
                f"{row_int_sql(f'__c_{col}', b)}), min(__i_{col}), max(__i_{col}) FROM residents"
            )
            for spec in (v1, v2):
                n, bad, lo, hi = runner.run([spec], [check])[0][0]
                assert n == (1500 if spec is v1 else 1700) and bad == 0
                assert enc.y_lo <= lo and hi <= enc.y_hi
    finally:
        runner.close()
