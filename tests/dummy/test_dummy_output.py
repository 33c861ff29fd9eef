"""Dummy tables are marked, the mark survives Parquet, and only marked tables are written."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from countylab.dummy import generate, is_dummy, write_dummy
from countylab.errors import PermissionDenied, ValidationFailed
from tests.dummy.dummy_profiles import residents_profile


def test_parquet_keeps_the_dummy_marker(tmp_path: Path) -> None:
    table = generate(residents_profile(), 200, seed=1)
    path = write_dummy(table, tmp_path / "residents.parquet", "parquet")
    again = pq.read_table(path)
    assert is_dummy(again) and is_dummy(again.schema)
    assert again.equals(table)


def test_csv_is_readable_utf8(tmp_path: Path) -> None:
    table = generate(residents_profile(), 200, seed=1)
    path = write_dummy(table, tmp_path / "residents.csv", "csv")
    again = pacsv.read_csv(path)
    assert again.column_names == table.column_names
    assert again.column("name").to_pylist() == table.column("name").to_pylist()


def test_real_looking_tables_are_refused(tmp_path: Path) -> None:
    real = pa.table({"name": ["张三"]})
    assert not is_dummy(real)
    with pytest.raises(PermissionDenied):
        write_dummy(real, tmp_path / "x.csv", "csv")
    assert not (tmp_path / "x.csv").exists()
    forged = real.replace_schema_metadata({"countylab.dummy": "yes"})
    assert not is_dummy(forged)


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    table = generate(residents_profile(), 5)
    with pytest.raises(ValidationFailed):
        write_dummy(table, tmp_path / "x.xlsx", "xlsx")  # type: ignore[arg-type]
