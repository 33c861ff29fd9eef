"""Turning an upload into the next dataset version: replace, append or upsert by key.

Everything happens in a warehouse staging directory; any exception aborts it, so a failed upload
leaves the warehouse exactly as it was.  Append is cheap because committed files are immutable:
the new version hard-links the previous parts and adds one new part.  Upsert is a merge, done by
DuckDB streaming over Parquet (anti-join of the old rows on the key, plus all new rows) within a
memory limit, spilling to the staging directory if needed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from countylab.errors import ValidationFailed
from countylab.ingest.schema import TableSchema
from countylab.storage.warehouse import Staging, VersionFiles, Warehouse, write_parquet_file

MODES = ("replace", "append", "upsert")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _literal(path: Path) -> str:
    return _literal_text(str(path))


def _check_key(mode: str, key: list[str] | None, schema: TableSchema) -> list[str]:
    if mode not in MODES:
        raise ValidationFailed(
            f"不支持的更新方式“{mode}”", f"Unsupported mode '{mode}'", reason="bad_mode", mode=mode
        )
    if mode != "upsert":
        return []
    if not key:
        raise ValidationFailed(
            "按主键更新（upsert）需要指定主键列", "Upsert needs key columns", reason="missing_key"
        )
    for name in key:
        schema.column(name)
    return list(key)


def build_version(
    warehouse: Warehouse,
    dataset_id: str,
    new_version: int,
    previous_files: list[Path] | None,
    batches: Iterable[pa.RecordBatch],
    mode: str,
    key: list[str] | None,
    schema: TableSchema,
    *,
    duckdb_memory_limit: str = "1GB",
) -> VersionFiles:
    """Write ``batches`` (already validated against ``schema``) as version ``new_version``.

    ``previous_files`` are the current version's files (``None`` for the first version).  On
    any error nothing is published; the caller records the catalog row after this returns.
    """
    key = _check_key(mode, key, schema)
    with warehouse.stage(dataset_id) as staging:
        if mode == "upsert" and previous_files:
            _upsert(staging, previous_files, batches, key, schema, duckdb_memory_limit)
        else:
            if mode == "append":
                for path in previous_files or []:
                    staging.add_file(path)
            staging.write(batches, schema.to_arrow())
            if mode == "upsert":
                _check_incoming_keys(
                    staging, sorted(staging.path.glob("part-*.parquet")), key, duckdb_memory_limit
                )
        return staging.commit(new_version)


@contextmanager
def _connect(staging: Staging, memory_limit: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private in-memory DuckDB that spills into the staging dir, removed afterwards."""
    spill = staging.path / "_spill"
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET memory_limit = {_literal_text(memory_limit)}")
        con.execute(f"SET temp_directory = {_literal(spill)}")
        con.execute("SET preserve_insertion_order = false")
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _check_incoming_keys(staging: Staging, files: list[Path], key: list[str], memory_limit: str) -> None:
    """Null keys and keys repeated inside the upload are errors that name the rows."""
    if not files:
        return
    with _connect(staging, memory_limit) as con:
        keys = ", ".join(_ident(k) for k in key)
        source = (
            "(SELECT *, row_number() OVER (ORDER BY filename, file_row_number) AS _row FROM "
            f"read_parquet([{', '.join(_literal(f) for f in files)}], filename=true, file_row_number=true))"
        )
        null_test = " OR ".join(f"{_ident(k)} IS NULL" for k in key)
        hit = con.execute(f"SELECT min(_row) FROM {source} WHERE {null_test}").fetchone()
        if hit is not None and hit[0] is not None:
            row = int(hit[0])
            raise ValidationFailed(
                f"第 {row} 行的主键列为空",
                f"Row {row}: a key column is empty",
                row=row,
                column=key[0],
                reason="null_key",
            )
        dup = con.execute(
            f"SELECT list(_row ORDER BY _row)[1:10] FROM {source} GROUP BY {keys} HAVING count(*) > 1 "
            "ORDER BY min(_row) LIMIT 1"
        ).fetchone()
    if dup is not None:
        rows = [int(r) for r in dup[0]]
        raise ValidationFailed(
            f"主键 {key} 在上传数据中重复：第 {', '.join(map(str, rows))} 行",
            f"Key {key} is repeated in the upload: rows {', '.join(map(str, rows))}",
            row=rows[0],
            rows=rows,
            column=key[0],
            reason="duplicate_key",
        )


def _upsert(
    staging: Staging,
    previous_files: list[Path],
    batches: Iterable[pa.RecordBatch],
    key: list[str],
    schema: TableSchema,
    memory_limit: str,
) -> None:
    incoming_dir = staging.path / "_incoming"
    incoming_dir.mkdir()
    incoming = incoming_dir / "new.parquet"
    write_parquet_file(incoming, batches, schema.to_arrow(), row_group_rows=staging.row_group_rows)
    _check_incoming_keys(staging, [incoming], key, memory_limit)
    columns = ", ".join(_ident(c) for c in schema.names)
    join = " AND ".join(f"old.{_ident(k)} IS NOT DISTINCT FROM new.{_ident(k)}" for k in key)
    old = f"read_parquet([{', '.join(_literal(p) for p in previous_files)}])"
    with _connect(staging, memory_limit) as con:
        con.execute(
            f"COPY (SELECT {columns} FROM {old} AS old WHERE NOT EXISTS "
            f"(SELECT 1 FROM read_parquet({_literal(incoming)}) AS new WHERE {join}) "
            f"UNION ALL SELECT {columns} FROM read_parquet({_literal(incoming)})) "
            f"TO {_literal(staging.next_part())} (FORMAT parquet, COMPRESSION zstd, "
            f"ROW_GROUP_SIZE {staging.row_group_rows})"
        )
    incoming.unlink()
    incoming_dir.rmdir()
