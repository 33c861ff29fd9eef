from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from countylab.errors import Conflict, TooLarge, ValidationFailed
from countylab.ingest import ColumnSpec, TableSchema, build_version, open_batches
from countylab.storage.warehouse import VersionFiles, Warehouse
from tests.ingest.ingest_helpers import tree, write

SCHEMA = TableSchema((ColumnSpec("id", "int64"), ColumnSpec("town", "string"), ColumnSpec("n", "int64")))


def ingest(
    wh: Warehouse,
    tmp: Path,
    version: int,
    text: str,
    mode: str,
    prev: VersionFiles | None = None,
    **kw: object,
) -> VersionFiles:
    path = write(tmp / f"upload{version}.csv", "id,town,n\n" + text)
    return build_version(
        wh,
        "people",
        version,
        list(prev.paths) if prev else None,
        open_batches(path, "csv", SCHEMA, batch_rows=2),
        mode,
        ["id"] if mode == "upsert" else None,
        SCHEMA,
        **kw,  # type: ignore[arg-type]
    )


def rows(paths: list[Path] | tuple[Path, ...]) -> list[tuple[object, ...]]:
    files = ", ".join(f"'{p}'" for p in paths)
    return duckdb.sql(f"SELECT id, town, n FROM read_parquet([{files}]) ORDER BY id").fetchall()


def test_replace_append_upsert_and_as_of(warehouse: Warehouse, tmp_path: Path) -> None:
    v1 = ingest(warehouse, tmp_path, 1, "1,城关镇,10\n2,东山乡,20\n", "replace")
    assert v1.row_count == 2 and v1.paths[0].name == "part-00000.parquet"
    assert set(v1.sha256) == {"part-00000.parquet"}
    v2 = ingest(warehouse, tmp_path, 2, "3,西河镇,30\n", "append", v1)
    assert v2.row_count == 3
    # append reuses v1's file through a hard link: same inode, no copy
    assert v2.paths[0].stat().st_ino == v1.paths[0].stat().st_ino
    assert v2.sha256["part-00000.parquet"] == v1.sha256["part-00000.parquet"]
    v3 = ingest(warehouse, tmp_path, 3, "2,东山乡,21\n4,南湖街道,40\n", "upsert", v2)
    assert rows(v3.paths) == [(1, "城关镇", 10), (2, "东山乡", 21), (3, "西河镇", 30), (4, "南湖街道", 40)]
    v4 = ingest(warehouse, tmp_path, 4, "9,北岭乡,90\n", "replace", v3)
    assert rows(warehouse.read_paths("people", 4)) == [(9, "北岭乡", 90)]
    # AS-OF: every older version still reads exactly as it was committed
    assert rows(warehouse.files("people", 1)) == [(1, "城关镇", 10), (2, "东山乡", 20)]
    assert rows(warehouse.files("people", 2))[-1] == (3, "西河镇", 30)
    assert rows(warehouse.read_paths("people", 3, include_stream=False))[1] == (2, "东山乡", 21)
    assert warehouse.versions("people") == [1, 2, 3, 4]
    assert v4.bytes == sum(p.stat().st_size for p in v4.paths)


def test_upsert_first_version_and_spill_dir_removed(warehouse: Warehouse, tmp_path: Path) -> None:
    v1 = ingest(warehouse, tmp_path, 1, "1,a,1\n2,b,2\n", "upsert")
    v2 = ingest(warehouse, tmp_path, 2, "2,b,3\n", "upsert", v1)
    assert rows(v2.paths) == [(1, "a", 1), (2, "b", 3)]
    assert sorted(p.name for p in warehouse.version_dir("people", 2).iterdir()) == [
        "_manifest.json",
        "part-00000.parquet",
    ]


@pytest.mark.parametrize(
    ("mode", "text", "details"),
    [
        (
            "upsert",
            "5,a,1\n6,b,2\n5,c,3\n7,d,4\n6,e,5\n",
            {"row": 1, "rows": [1, 3], "reason": "duplicate_key"},
        ),
        ("upsert", "5,a,1\n,b,2\n", {"row": 2, "reason": "null_key"}),
        ("append", "5,a,1\n6,b,x\n", {"row": 2, "column": "n", "reason": "type_mismatch"}),
        ("replace", "5,a\n", {"row": 2, "reason": "ragged_row"}),
        ("append", "", {"reason": "empty"}),
    ],
)
def test_failed_upload_leaves_no_trace(
    warehouse: Warehouse, tmp_path: Path, mode: str, text: str, details: dict[str, object]
) -> None:
    v1 = ingest(warehouse, tmp_path, 1, "1,a,1\n2,b,2\n", "replace")
    before = tree(warehouse.root)
    with pytest.raises(ValidationFailed) as info:
        ingest(warehouse, tmp_path, 2, text, mode, v1)
    assert {k: info.value.details.get(k) for k in details} == details
    assert tree(warehouse.root) == before


def test_changed_schema_and_too_large_leave_no_trace(warehouse: Warehouse, tmp_path: Path) -> None:
    v1 = ingest(warehouse, tmp_path, 1, "1,a,1\n", "replace")
    before = tree(warehouse.root)
    changed = write(tmp_path / "changed.csv", "id,town\n1,a\n")
    with pytest.raises(ValidationFailed) as info:
        build_version(
            warehouse,
            "people",
            2,
            list(v1.paths),
            open_batches(changed, "csv", SCHEMA),
            "append",
            None,
            SCHEMA,
        )
    assert info.value.details["reason"] == "schema_changed"
    with pytest.raises(TooLarge):
        build_version(
            warehouse,
            "people",
            2,
            list(v1.paths),
            open_batches(changed, "csv", SCHEMA, max_bytes=3),
            "append",
            None,
            SCHEMA,
        )
    assert tree(warehouse.root) == before


def test_existing_version_is_a_conflict(warehouse: Warehouse, tmp_path: Path) -> None:
    ingest(warehouse, tmp_path, 1, "1,a,1\n", "replace")
    before = tree(warehouse.root)
    with pytest.raises(Conflict):
        ingest(warehouse, tmp_path, 1, "2,b,2\n", "replace")
    assert tree(warehouse.root) == before


def test_bad_mode_and_missing_key(warehouse: Warehouse, tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="mode"):
        ingest(warehouse, tmp_path, 1, "1,a,1\n", "merge")
    with pytest.raises(ValidationFailed) as info:
        build_version(warehouse, "people", 1, None, iter([]), "upsert", None, SCHEMA)
    assert info.value.details["reason"] == "missing_key"


def test_bad_dataset_id(warehouse: Warehouse) -> None:
    for bad in ["../x", "a/b", ".staging", "", "x" * 65]:
        with pytest.raises(ValidationFailed):
            warehouse.stage(bad)


def test_many_row_groups_and_files(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh", row_group_rows=100, rows_per_file=250)
    path = write(tmp_path / "big.csv", "id,town,n\n" + "".join(f"{i},t,{i}\n" for i in range(1000)))
    v = build_version(
        wh, "big", 1, None, open_batches(path, "csv", SCHEMA, batch_rows=64), "replace", None, SCHEMA
    )
    assert v.row_count == 1000 and len(v.paths) == 4
    assert rows(v.paths)[-1] == (999, "t", 999)
