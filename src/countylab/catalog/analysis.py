"""What the lab learns about a new dataset version: PII per column, a proposed grade, a quality
profile and a proposed dummy-data profile.  Values of sensitive columns never leave here:
only counts, null rates and (for non-sensitive columns) ranges."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from countylab.catalog.grading import GradeProposal, propose_grade
from countylab.catalog.pii import ColumnFinding, detect_table
from countylab.dummy import DatasetProfile, profile_from_table, relations
from countylab.dummy.profiling import KeySetInfo

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
    key_set_labels: dict[str, dict[str, str]] | None = None,
    catalog_key_sets: list[KeySetInfo] | None = None,
    as_of: dt.date | None = None,
) -> Analysis:
    """``key_set_labels``: display names of the codes of each key-set column; ``catalog_key_sets``:
    every public key set of the county, so unlinked columns of town names are still recognised."""
    sample = spread_sample(paths) if paths else None
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
    for column in foreign_keys or {}:
        if column not in key_sets:
            merged[column] = "foreign_key"  # its shape (H0000001) is learnt like a key's
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
        key_set_labels=key_set_labels,
        catalog_key_sets=catalog_key_sets,
        as_of=as_of,
    )
    dummy = _with_foreign_keys(dummy, foreign_keys or {}, set(key_sets))
    dummy = relations.follows(dummy, sample, list(foreign_keys or {}), sensitive)
    return Analysis(findings, proposal, profiles, dummy)


def spread_sample(paths: list[Path], limit: int = SAMPLE_ROWS) -> pa.Table:
    """Up to ``limit`` rows spread evenly over the whole version, in file order.

    Files are usually sorted (residents by household, hence by village and town): the first
    100,000 rows of a large county are three towns, and a profile built from them gave the other
    nine towns almost no weight. Every k-th row keeps the order and covers every town."""
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
    if total <= limit:
        return pa.Table.from_batches(list(sample_batches(paths, total)))
    wanted = np.floor(np.arange(limit) * (total / limit)).astype(np.int64)
    picked: list[pa.RecordBatch] = []
    offset = 0
    for batch in sample_batches(paths, total):
        lo, hi = np.searchsorted(wanted, [offset, offset + batch.num_rows])
        picked.append(batch.take(pa.array(wanted[lo:hi] - offset)))
        offset += batch.num_rows
    table = pa.Table.from_batches([b for b in picked if b.num_rows])
    return table.slice(0, limit)


def key_set_inputs(cols: list[Any], all_sets: dict[str, Any]) -> dict[str, Any]:
    """The key-set arguments of :func:`analyse` from catalog columns and key sets, so the
    ingestion paths pass labels and the county's code lists without repeating the mapping."""
    return {
        "key_set_labels": {
            c.name: dict(all_sets[c.key_set].labels or {})
            for c in cols
            if c.key_set in all_sets and all_sets[c.key_set].labels
        },
        "catalog_key_sets": [
            KeySetInfo([str(v) for v in ks.values], {str(k): str(v) for k, v in (ks.labels or {}).items()})
            for ks in all_sets.values()
        ],
    }


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
