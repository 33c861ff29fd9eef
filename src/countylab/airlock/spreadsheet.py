"""A released table as a file WPS and Excel open cleanly: XLSX, or CSV with a BOM.

A job writes its tables as plain UTF-8 CSV (the output library's format, exact and diffable), and
that is what checkers review and what the release record's SHA-256 names.  Opened by
double-click in Excel on a Chinese Windows, a BOM-less UTF-8 CSV turns into mojibake, so the
download offers the same table converted on the fly.  The conversion only re-encodes the cells
that were released (same rows, same columns, same values); the original bytes stay the
authoritative copy, and each conversion is audited as a download of that file.
"""

from __future__ import annotations

import csv
import io
from pathlib import PurePosixPath
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pacsv

from countylab.errors import UserError
from countylab.export import table_to_csv, table_to_xlsx

Format = Literal["csv", "xlsx"]
_DELIMITERS = {".csv": ",", ".tsv": "\t"}
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def is_table(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in _DELIMITERS


def convert(name: str, data: bytes, fmt: Format) -> tuple[bytes, str]:
    """The released table ``name`` as ``fmt``: (bytes, file name)."""
    path = PurePosixPath(name)
    delimiter = _DELIMITERS.get(path.suffix.lower())
    if delimiter is None:
        raise UserError(
            f"{path.name} 不是表格（CSV/TSV），只能按原样下载",
            f"{path.name} is not a table (CSV/TSV); download it as it is",
            reason="not_a_table",
        )
    table = _read(path.name, data, delimiter)
    if fmt == "xlsx":
        return table_to_xlsx(table, sheet=path.stem[:31] or "数据", title=path.name), f"{path.stem}.xlsx"
    return table_to_csv(table), f"{path.stem}.csv"


def _read(name: str, data: bytes, delimiter: str) -> pa.Table:
    try:
        header = next(
            csv.reader(io.StringIO(data.decode("utf-8-sig").split("\n", 1)[0]), delimiter=delimiter)
        )
        text = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(encoding="utf8"),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header}),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, StopIteration, csv.Error) as exc:
        raise UserError(
            f"{name} 无法按表格读取，请按原样下载：{exc}",
            f"{name} cannot be read as a table; download it as it is: {exc}",
            reason="unreadable_table",
        ) from exc
    return pa.table({c: _typed(text.column(c)) for c in text.column_names})


def _typed(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Numbers become number cells; codes stay text (a leading zero, or longer than Excel's 15
    significant digits: 村代码 330729001001001, ID-like keys) so Excel does not mangle them."""
    values = [v for v in column.to_pylist() if v not in (None, "")]
    if not values or any(_code_like(v) for v in values):
        return column
    blanks_as_null = pa.chunked_array(
        [pa.array([v if v != "" else None for v in column.to_pylist()], pa.string())]
    )
    for target in (pa.int64(), pa.float64()):
        try:
            return blanks_as_null.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return column


def _code_like(value: str) -> bool:
    digits = value.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and digits[1:2] != ".":
        return True
    return sum(ch.isdigit() for ch in digits) > 15
