from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from countylab.errors import TooLarge, ValidationFailed
from countylab.ingest import ColumnSpec, InMemorySeenKeys, PushBuffer, TableSchema, build_version
from countylab.storage.warehouse import Warehouse
from tests.ingest.ingest_helpers import tree

SCHEMA = TableSchema((ColumnSpec("id", "int64", nullable=False), ColumnSpec("v", "float64")))


def count(paths: list[Path]) -> int:
    if not paths:
        return 0
    files = ", ".join(f"'{p}'" for p in paths)
    return int(duckdb.sql(f"SELECT count(*) FROM read_parquet([{files}])").fetchall()[0][0])


@pytest.fixture
def buffer(warehouse: Warehouse) -> PushBuffer:
    return PushBuffer(warehouse, InMemorySeenKeys(), max_rows=100)


def test_pushed_rows_readable_at_once(warehouse: Warehouse, buffer: PushBuffer) -> None:
    result = buffer.push("meter", SCHEMA, [{"id": 1, "v": 2.5}, {"id": 2, "v": None}])
    assert result.accepted and result.rows == 2
    assert count(warehouse.read_paths("meter", None)) == 2  # readable as soon as push returns
    ipc_payload = pa.BufferOutputStream()
    batch = pa.record_batch({"id": pa.array([3], pa.int32()), "v": [1.0]})
    with pa.ipc.new_stream(ipc_payload, batch.schema) as writer:
        writer.write_batch(batch)
    assert buffer.push("meter", SCHEMA, ipc_payload.getvalue().to_pybytes()).rows == 1
    assert count(warehouse.read_paths("meter", None)) == 3


def test_idempotency_key(warehouse: Warehouse, buffer: PushBuffer) -> None:
    assert buffer.push("meter", SCHEMA, [{"id": 1}], idempotency_key="k1").accepted
    again = buffer.push("meter", SCHEMA, [{"id": 1}], idempotency_key="k1")
    assert (again.accepted, again.rows) == (False, 0)
    assert buffer.push("meter", SCHEMA, [{"id": 1}], idempotency_key="k2").accepted
    assert count(warehouse.read_paths("meter", None)) == 2
    # after compaction the stream file is gone; the SeenKeys record still refuses the replay
    compaction = buffer.compact("meter", 1, None, SCHEMA)
    assert compaction is not None
    buffer.confirm_compaction(compaction)
    assert not buffer.push("meter", SCHEMA, [{"id": 1}], idempotency_key="k1").accepted
    assert count(warehouse.read_paths("meter", 1)) == 2
    assert not [p for p in warehouse.stream_dir("meter").iterdir()]  # no temp file left behind


@pytest.mark.parametrize(
    ("payload", "error", "reason"),
    [
        ([{"id": "x"}], ValidationFailed, "type_mismatch"),
        ([{"v": 1.0}], ValidationFailed, "null_not_allowed"),
        ([{"id": 1, "other": 2}], ValidationFailed, "schema_changed"),
        ([], ValidationFailed, "empty"),
        ([{"id": i} for i in range(101)], TooLarge, "too_many_rows"),
        (b"garbage", ValidationFailed, "bad_ipc"),
    ],
)
def test_bad_push_leaves_no_trace(
    warehouse: Warehouse, buffer: PushBuffer, payload: object, error: type[Exception], reason: str
) -> None:
    buffer.push("meter", SCHEMA, [{"id": 0}])
    before = tree(warehouse.root)
    with pytest.raises(error) as info:
        buffer.push("meter", SCHEMA, payload, idempotency_key="k")  # type: ignore[arg-type]
    assert info.value.details["reason"] == reason  # type: ignore[attr-defined]
    assert tree(warehouse.root) == before
    assert buffer.push("meter", SCHEMA, [{"id": 1}], idempotency_key="k").accepted  # key not burnt


def test_compaction_does_not_double_count(warehouse: Warehouse, buffer: PushBuffer) -> None:
    v1 = build_version(
        warehouse,
        "meter",
        1,
        None,
        [pa.record_batch({"id": [1, 2], "v": [0.0, 0.0]})],
        "replace",
        None,
        SCHEMA,
    )
    buffer.push("meter", SCHEMA, [{"id": 3}])
    buffer.push("meter", SCHEMA, [{"id": 4}])
    assert count(warehouse.read_paths("meter", 1)) == 4
    compaction = buffer.compact("meter", 2, list(v1.paths), SCHEMA)
    assert compaction is not None and compaction.version.row_count == 4
    buffer.push("meter", SCHEMA, [{"id": 5}])  # arrives during compaction: stays in the stream
    # catalog not yet switched: readers of v1 still see everything exactly once
    assert count(warehouse.read_paths("meter", 1)) == 5
    # switched but stream files not yet removed: v2's manifest hides the folded ones
    assert count(warehouse.read_paths("meter", 2)) == 5
    buffer.confirm_compaction(compaction)
    assert count(warehouse.read_paths("meter", 2)) == 5
    assert len(warehouse.stream_files("meter")) == 1
    assert count(warehouse.read_paths("meter", 1, include_stream=False)) == 2  # AS-OF v1
    assert buffer.compact("meter", 3, list(compaction.version.paths), SCHEMA) is not None
    assert buffer.compact("empty", 1, None, SCHEMA) is None


def test_gc_removes_folded_stream_files_if_confirm_was_lost(warehouse: Warehouse, buffer: PushBuffer) -> None:
    buffer.push("meter", SCHEMA, [{"id": 1}])
    compaction = buffer.compact("meter", 1, None, SCHEMA)
    assert compaction is not None
    warehouse.gc({("meter", 1)}, grace_s=0)
    assert warehouse.stream_files("meter") == []
    assert count(warehouse.read_paths("meter", 1)) == 1
