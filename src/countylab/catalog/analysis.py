"""What the lab learns about a new dataset version: PII per column, a proposed grade, a quality
profile and a proposed dummy-data profile.  Values of sensitive columns never leave here:
only counts, null rates and (for non-sensitive columns) ranges."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from countylab.catalog.grading import GradeProposal, propose_grade
from countylab.catalog.pii import ColumnFinding, detect_table
from countylab.dummy import DatasetProfile, profile_from_table

SAMPLE_ROWS = 100_000
_PII_TO_SEMANTIC = {
    "id_number": "id_number",
    "mobile": "mobile",
    "person_name": "person_name",
    "address": "address",
    "uscc": "uscc",
    "bank_card": "bank_card",
    "licence_plate": "licence_plate",
}


@dataclass(frozen=True)
class Analysis:
    findings: list[ColumnFinding]
    proposal: GradeProposal
    profiles: dict[str, dict[str, Any]]  # column -> quality profile
    dummy: DatasetProfile


def sample_batches(paths: list[Path], limit: int = SAMPLE_ROWS) -> Iterator[pa.RecordBatch]:
    seen = 0
    for path in paths:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=16_384):
            if seen >= limit:
                return
            batch = batch.slice(0, min(batch.num_rows, limit - seen))
            seen += batch.num_rows
            yield batch


def analyse(
    paths: list[Path],
    *,
    name: str,
    privacy_unit: str,
    privacy_unit_column: str | None,
    row_count: int,
    tags: list[str],
    department: str | None,
    semantics: dict[str, str],
    key_sets: dict[str, list[str]],
    primary_key: list[str] | None,
    foreign_keys: dict[str, str] | None = None,
) -> Analysis:
    sample = pa.Table.from_batches(list(sample_batches(paths))) if paths else None
    findings = detect_table(sample) if sample is not None and sample.num_rows else []
    proposal = propose_grade(
        findings, privacy_unit=privacy_unit, row_count=row_count, tags=tags, department=department
    )
    sensitive = {f.column for f in findings}
    if privacy_unit_column:
        sensitive.add(privacy_unit_column)
    merged = dict(semantics)
    for f in findings:
        merged.setdefault(f.column, _PII_TO_SEMANTIC[str(f.kind)])
    if privacy_unit_column:
        merged.setdefault(privacy_unit_column, "privacy_unit_id")
    # In a dataset about persons or enterprises an extreme value is one unit's value: no min/max at all.
    hidden = sensitive if privacy_unit == "none" else sensitive | _all_columns(paths)
    profiles = quality_profile(paths, hidden) if paths else {}
    if sample is None:
        sample = pa.table({})
    dummy = profile_from_table(
        sample,
        semantics=merged,
        public_key_sets=key_sets,
        sensitive_columns=sensitive,
        name=name,
        primary_key=primary_key,
    )
    dummy = _with_foreign_keys(dummy, foreign_keys or {}, set(key_sets))
    return Analysis(findings, proposal, profiles, dummy)


def _with_foreign_keys(
    profile: DatasetProfile, foreign_keys: dict[str, str], keyed: set[str]
) -> DatasetProfile:
    """Declared joins become foreign keys of the dummy profile, so dummy datasets join too.

    Columns backed by a public key set keep drawing from it (equally joinable, and realistic).
    """
    columns = []
    for col in profile.columns:
        target = foreign_keys.get(col.name)
        if target and col.name not in keyed and col.type in ("string", "int64"):
            col = replace(
                col,
                semantic="foreign_key",
                foreign_key=target,
                categories=None,
                category_weights=None,
                minimum=None,
                maximum=None,
                mean=None,
                distribution=None,
            )
        columns.append(col)
    return replace(profile, columns=columns)


def _all_columns(paths: list[Path]) -> set[str]:
    return set(pq.ParquetFile(paths[0]).schema_arrow.names) if paths else set()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quality_profile(paths: list[Path], sensitive: set[str]) -> dict[str, dict[str, Any]]:
    """Null rate and distinct count for every column; min/max only for non-sensitive ones."""
    con = duckdb.connect()
    try:
        files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"
        rel = f"read_parquet({files})"
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()]
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
        parts = ["COUNT(*)"]
        for c in cols:
            parts.append(f"COUNT({_q(c)})")
            parts.append(f"approx_count_distinct({_q(c)})")
            orderable = c not in sensitive and not types[c].startswith(("VARCHAR", "BOOLEAN"))
            parts.append(f"CAST(MIN({_q(c)}) AS VARCHAR)" if orderable else "NULL")
            parts.append(f"CAST(MAX({_q(c)}) AS VARCHAR)" if orderable else "NULL")
        row = con.execute(f"SELECT {', '.join(parts)} FROM {rel}").fetchone()
    finally:
        con.close()
    assert row is not None
    total = int(row[0])
    out: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(cols):
        non_null, distinct, lo, hi = row[1 + 4 * i : 5 + 4 * i]
        entry: dict[str, Any] = {
            "null_rate": round(1 - non_null / total, 4) if total else 0.0,
            "distinct": int(distinct),
        }
        if c not in sensitive and lo is not None:
            entry["min"], entry["max"] = lo, hi
        out[c] = entry
    return out
