"""Incremental syncs against a real PostgreSQL source table, committed through the ingestion path."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

import duckdb
import psycopg
import pytest

from countylab.catalog import service as catalog
from countylab.connectors import service as connectors
from countylab.connectors.sources import decode_cursor
from countylab.storage.catalog_models import Connector, DatasetVersion, SyncRun
from tests.connectors.conftest import SECRET, T0, World, with_password

pytestmark = pytest.mark.postgres


def add_connector(world: World, dsn: str, **kw: Any) -> int:
    fields: dict[str, Any] = {
        "source_table": "public.people",
        "cursor_column": "updated_at",
        "key_columns": ["id"],
        **kw,
    }
    provider = world.principal("provider")
    with world.lab.tx() as s:
        return connectors.create_connector(s, provider, world.dataset_id, dsn=dsn, **fields).id


def sync(world: World, connector_id: int, **kw: Any) -> SyncRun:
    return connectors.run_sync(world.lab, world.principal("provider"), connector_id, **kw)


def rows_of(world: World) -> list[tuple[Any, ...]]:
    with world.lab.tx() as s:
        ds = catalog.get_dataset(s, world.dataset_id)
        paths = [str(p) for p in world.lab.ingestion.read_paths(ds)]
    return duckdb.sql(f"SELECT id, name, score FROM read_parquet({paths!r}) ORDER BY id").fetchall()


def state(world: World, connector_id: int) -> tuple[int | None, int, str | None, Any]:
    with world.lab.tx() as s:
        ds = catalog.get_dataset(s, world.dataset_id)
        c = s.get(Connector, connector_id)
        assert c is not None
        versions = s.query(DatasetVersion).filter_by(dataset_id=ds.id).count()
        return ds.current_version, versions, c.last_cursor, connectors.aware(c.next_run_at)


def test_first_sync_pulls_all_then_only_changed_rows_upserted_by_key(world, source, source_url):
    cid = add_connector(world, with_password(source_url))
    first = sync(world, cid)
    assert (first.status, first.rows, first.version, first.error) == ("succeeded", 3, 1, "")
    assert rows_of(world) == [(1, "张三", 81.5), (2, "李四", 77.25), (3, "王五", None)]
    with world.lab.tx() as s:
        v1 = s.query(DatasetVersion).filter_by(dataset_id=world.dataset_id, version=1).one()
        assert (v1.source, v1.mode, v1.row_count) == ("pull", "upsert", 3)
        ds = catalog.get_dataset(s, world.dataset_id)
        types = {c["name"]: c["type"] for c in ds.table_schema["columns"]}
    assert types == {
        "id": "int64",
        "name": "string",
        "score": "float64",
        "born": "date",
        "updated_at": "timestamp",
    }
    cursor = decode_cursor(state(world, cid)[2])
    assert cursor == T0 + timedelta(minutes=2) and cursor.tzinfo is not None

    source.execute(
        "UPDATE people SET name = '李四（已迁出）', updated_at = %s WHERE id = 2", (T0 + timedelta(hours=1),)
    )
    source.execute("INSERT INTO people VALUES (4, '赵六', 90, '1960-05-05', %s)", (T0 + timedelta(hours=2),))
    second = sync(world, cid)
    assert (second.status, second.rows, second.version) == ("succeeded", 2, 2)
    assert rows_of(world) == [
        (1, "张三", 81.5),
        (2, "李四（已迁出）", 77.25),
        (3, "王五", None),
        (4, "赵六", 90.0),
    ]
    assert decode_cursor(state(world, cid)[2]) == T0 + timedelta(hours=2)

    third = sync(world, cid)
    assert (third.status, third.rows, third.version) == ("succeeded", 0, None)
    assert state(world, cid)[:2] == (2, 2)


def test_append_with_integer_cursor_never_splits_equal_cursor_values(world, source_url):
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (seq bigint, kind text)")
        conn.execute("INSERT INTO events VALUES (1, 'a'), (2, 'b'), (2, 'c'), (3, 'd'), (NULL, 'no cursor')")
    cid = add_connector(world, source_url, source_table="events", cursor_column="seq", key_columns=[])
    first = sync(world, cid, max_rows=2)  # the bound is the 2nd value (2): both rows with seq = 2 come along
    assert (first.status, first.rows) == ("succeeded", 3)
    assert state(world, cid)[2] == "int:2" and decode_cursor("int:2") == 2
    second = sync(world, cid, max_rows=2)
    assert (second.status, second.rows, second.version) == ("succeeded", 1, 2)
    with world.lab.tx() as s:
        ds = catalog.get_dataset(s, world.dataset_id)
        paths = [str(p) for p in world.lab.ingestion.read_paths(ds)]
        modes = {v.mode for v in s.query(DatasetVersion).filter_by(dataset_id=ds.id)}
    got = duckdb.sql(f"SELECT seq, kind FROM read_parquet({paths!r}) ORDER BY seq, kind").fetchall()
    assert got == [(1, "a"), (2, "b"), (2, "c"), (3, "d")] and modes == {"append"}


def _assert_failed_and_unchanged(
    world: World, cid: int, run: SyncRun, reason: str, before: tuple[Any, ...]
) -> None:
    assert run.status == "failed" and run.rows == 0 and run.version is None
    error = json.loads(run.error)
    assert error["reason"] == reason, error
    assert error["zh"] and error["en"] and error["zh"] != error["en"]
    assert SECRET not in run.error
    assert state(world, cid) == before  # versions, cursor and schedule untouched


def test_dropped_table_and_renamed_columns_fail_cleanly(world, source, source_url, caplog):
    cid = add_connector(world, with_password(source_url))
    assert sync(world, cid).status == "succeeded"
    before = state(world, cid)
    caplog.set_level(logging.DEBUG)

    source.execute("ALTER TABLE people RENAME COLUMN name TO full_name")
    source.execute("INSERT INTO people VALUES (9, 'x', 1, NULL, %s)", (T0 + timedelta(days=1),))
    run = sync(world, cid)
    _assert_failed_and_unchanged(world, cid, run, "schema_change", before)
    assert "name" in json.loads(run.error)["en"]

    source.execute("ALTER TABLE people RENAME COLUMN full_name TO name")
    source.execute("ALTER TABLE people RENAME COLUMN updated_at TO changed_at")
    _assert_failed_and_unchanged(world, cid, sync(world, cid), "no_cursor_column", before)

    source.execute("DROP TABLE people")
    _assert_failed_and_unchanged(world, cid, sync(world, cid), "no_table", before)
    assert SECRET not in caplog.text

    with world.lab.tx() as s:
        statuses = [r.status for r in s.query(SyncRun).filter_by(connector_id=cid).order_by(SyncRun.id)]
    assert statuses == ["succeeded", "failed", "failed", "failed"]


def test_unreachable_source_and_type_mismatch_record_failed_runs(world, source, source_url):
    cid = add_connector(world, with_password(source_url))
    assert sync(world, cid).status == "succeeded"
    before = state(world, cid)
    source.execute("ALTER TABLE people ALTER COLUMN score TYPE text")
    source.execute("INSERT INTO people VALUES (5, '钱七', 'n/a', NULL, %s)", (T0 + timedelta(days=2),))
    run = sync(world, cid)  # the ingestion path validates pulled rows like an upload's
    _assert_failed_and_unchanged(world, cid, run, "type_mismatch", before)

    provider = world.principal("provider")
    with world.lab.tx() as s:
        connectors.update_connector(s, provider, cid, dsn=f"postgresql://reader:{SECRET}@127.0.0.1:1/nowhere")
    _assert_failed_and_unchanged(world, cid, sync(world, cid), "unreachable", before)


@pytest.mark.slow
def test_wrong_password_is_a_failed_run(world, password_pg):
    url, password = password_pg
    cid = add_connector(
        world, with_password(url, "not-" + password), source_table="t", cursor_column="id", key_columns=[]
    )
    run = sync(world, cid)
    assert run.status == "failed" and json.loads(run.error)["reason"] == "auth_failed"
    provider = world.principal("provider")
    with world.lab.tx() as s:
        connectors.update_connector(s, provider, cid, dsn=with_password(url, password))
    good = sync(world, cid)
    assert (good.status, good.rows, good.version) == ("succeeded", 2, 1)


def test_numeric_cursor_keeps_its_type(world, source_url):
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE m (k int, amount numeric(10, 3))")
        conn.execute("INSERT INTO m VALUES (1, 0.125), (2, 10.5)")
    cid = add_connector(world, source_url, source_table="m", cursor_column="amount", key_columns=["k"])
    assert sync(world, cid).rows == 2
    assert state(world, cid)[2] == "decimal:10.500" and decode_cursor("decimal:10.500") == Decimal("10.500")
    assert sync(world, cid).rows == 0
