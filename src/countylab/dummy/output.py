"""Marking, recognising and writing dummy data (模拟数据).

Every generated table carries ``{"countylab.dummy": "true"}`` in its Arrow schema metadata, which
Parquet keeps; readers (preview page, SDK, sandbox staging) call :func:`is_dummy` so synthetic
rows can never be mistaken for real ones, and :func:`write_dummy` refuses tables without the
mark, so this helper cannot become a way to export real rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from countylab.errors import PermissionDenied, ValidationFailed

DUMMY_METADATA_KEY = "countylab.dummy"
DUMMY_LABEL_ZH = "模拟数据（非真实数据）"
DUMMY_LABEL_EN = "Dummy data (synthetic, not real)"


def mark_dummy(table: pa.Table, *, dataset: str, seed: int) -> pa.Table:
    """Add the dummy-data marker (and where it came from) to the table's schema metadata."""
    metadata = dict(table.schema.metadata or {})
    metadata.update(
        {
            DUMMY_METADATA_KEY.encode(): b"true",
            b"countylab.dataset": dataset.encode(),
            b"countylab.seed": str(seed).encode(),
        }
    )
    return table.replace_schema_metadata(metadata)


def is_dummy(table: pa.Table | pa.Schema) -> bool:
    """True when the table (or schema) carries the dummy-data marker."""
    schema = table if isinstance(table, pa.Schema) else table.schema
    return (schema.metadata or {}).get(DUMMY_METADATA_KEY.encode()) == b"true"


def write_dummy(table: pa.Table, path: str | Path, fmt: Literal["csv", "parquet"] = "parquet") -> Path:
    """Write a generated table for download; Parquet keeps the marker, CSV is plain UTF-8.

    CSV cannot hold metadata, so callers serving CSV should name the file and label the page as
    dummy data (see ``DUMMY_LABEL_ZH``).
    """
    if not is_dummy(table):
        raise PermissionDenied(
            "只能写出带有模拟数据标记的表",
            "only tables marked as dummy data can be written here",
            reason="not_dummy",
        )
    target = Path(path)
    if fmt == "parquet":
        pq.write_table(table, target)
    elif fmt == "csv":
        pacsv.write_csv(table, target)
    else:
        raise ValidationFailed(f"不支持的格式：{fmt}", f"unsupported format: {fmt}", reason="fmt")
    return target
