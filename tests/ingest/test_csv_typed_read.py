"""CSV columns converted inside Arrow's reader must equal what validating text gives.

Small blocks make the reader deliver many batches, so a refusal deep in the file exercises the
switch to the text path after rows were already handed on (skipped, not repeated).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from countylab.errors import ValidationFailed
from countylab.ingest import ColumnSpec, TableSchema, open_batches, readers
from countylab.ingest.schema import validate_batch

SCHEMA = TableSchema(
    (
        ColumnSpec("id", "int64", nullable=False),
        ColumnSpec("income", "float64"),
        ColumnSpec("born", "date"),
        ColumnSpec("name", "string"),
        ColumnSpec("insured", "bool"),
        ColumnSpec("seen", "timestamp"),
    )
)
ROWS = 3000


def _csv(path: Path, special: dict[int, str] | None = None) -> Path:
    lines = ["id,income,born,name,insured,seen"]
    for i in range(1, ROWS + 1):
        lines.append(
            (special or {}).get(i, f'{i},{i * 1.5},1990-01-{i % 28 + 1:02d},"名{i}",是,2024-01-02 08:30:00')
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _typed(path: Path) -> pa.Table:
    return pa.Table.from_batches(list(open_batches(path, "csv", SCHEMA)), SCHEMA.to_arrow())


def _via_text(path: Path) -> pa.Table:
    names = SCHEMA.names
    out, offset = [], 0
    for batch in readers._csv_string_batches(path, names):
        out.append(validate_batch(batch, SCHEMA, row_offset=offset))
        offset += batch.num_rows
    return pa.Table.from_batches(out, SCHEMA.to_arrow())


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "_CSV_BLOCK", 16 << 10)


def test_plain_file_is_read_typed_and_equals_text_path(tmp_path: Path) -> None:
    path = _csv(tmp_path / "a.csv")
    typed = _typed(path)
    assert typed.num_rows == ROWS and typed.equals(_via_text(path))
    first = next(readers._csv_typed_batches(path, SCHEMA.names, SCHEMA))
    assert first.schema.field("id").type == pa.int64()  # the fast path really converted
    assert first.schema.field("insured").type == pa.string()  # bool stays text for validation


@pytest.mark.parametrize(
    ("row", "switches"),
    [
        ('2500,  ,1990-01-01,"x",否,', True),  # blank number: null on the text path, refused by Arrow
        ("2500,1.5,1990/1/1,x,yes,2024/01/02 08:30", True),  # another date spelling
        ("2500,\u00a07.5\u00a0,1990-01-01,x,true,", True),  # Unicode spaces around a number
        ('2500,7,1990-01-01,"line\nbreak",是,', False),  # a newline inside a quoted value
    ],
)
def test_values_arrow_refuses_deep_in_the_file_end_up_as_validation_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, row: str, switches: bool
) -> None:
    path = _csv(tmp_path / "b.csv", {2500: row})
    text_reads: list[Path] = []
    text_path = readers._csv_string_batches

    def spy(source: Path, names: list[str]) -> Any:
        text_reads.append(source)
        return text_path(source, names)

    monkeypatch.setattr(readers, "_csv_string_batches", spy)
    typed = _typed(path)
    assert bool(text_reads) is switches
    monkeypatch.setattr(readers, "_csv_string_batches", text_path)
    assert typed.num_rows == ROWS  # the rows before the switch are not repeated
    assert typed.equals(_via_text(path))
    assert typed.column("id").to_pylist() == list(range(1, ROWS + 1))


def test_a_bad_value_deep_in_the_file_is_named_by_its_row(tmp_path: Path) -> None:
    path = _csv(tmp_path / "c.csv", {2700: "2700,lots,1990-01-01,x,是,"})
    with pytest.raises(ValidationFailed) as info:
        _typed(path)
    assert info.value.details["row"] == 2700 and info.value.details["column"] == "income"


def test_a_ragged_row_deep_in_the_file_is_named(tmp_path: Path) -> None:
    path = _csv(tmp_path / "d.csv", {2800: "2800,1"})
    with pytest.raises(ValidationFailed) as info:
        _typed(path)
    assert info.value.details["reason"] == "ragged_row"
