"""Rewrite a confirmed spreadsheet layout as a plain UTF-8 CSV the ordinary readers ingest.

Why a rewrite instead of a second reader: every format then shares one set of parsing rules
(``validate_batch``), one way of naming a bad value, and the streaming CSV path.  The rewrite
keeps a map from its data rows back to the sheet's own row numbers, so an error says
"工作表“花名册”第 12 行", the row the clerk sees in WPS, not a row of a file they never saw.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from array import array
from pathlib import Path
from typing import Any

from countylab.errors import ValidationFailed
from countylab.ingest.layout import Layout, sheet_rows
from countylab.ingest.readers import cell_text


def tidy(path: Path, fmt: str, layout: Layout, out: Path, names: list[str] | None = None) -> array[int]:
    """Write the data rows of ``path`` under ``layout`` to ``out``; return their sheet row numbers.

    ``names`` replaces the header texts (the identifiers the user confirmed), same length.
    Skipped rows (title, 合计, 制表人, blank, the user's) are left out; a data row with values
    beyond the header is refused with its sheet row, as a ragged CSV row is.
    """
    header = list(names or layout.names)
    if len(header) != layout.width:
        raise ValidationFailed("列名个数与表头不符", "The number of column names does not match the header")
    width = layout.width
    rowmap: array[int] = array("l")
    _, rows = sheet_rows(path, fmt)
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for number, cells in rows:
            if number <= layout.header_rows[-1] or layout.skip_reason(number, cells) is not None:
                continue
            extra = [j for j, v in enumerate(cells[width:], start=width) if v is not None and str(v).strip()]
            if extra:
                raise ValidationFailed(
                    f"工作表“{layout.sheet}”第 {number} 行第 {extra[0] + 1} 列在表头之外还有数据（列数不齐）",
                    f"Sheet '{layout.sheet}' row {number}, column {extra[0] + 1}: a value beyond the header "
                    "(ragged row)",
                    sheet=layout.sheet,
                    row=number,
                    column=extra[0] + 1,
                    reason="ragged_row",
                )
            values: list[Any] = [_day(v) for v in cells[:width]] + [None] * (width - len(cells))
            writer.writerow(
                [
                    "" if v is None else cell_text(v, row=number, column=header[j])
                    for j, v in enumerate(values)
                ]
            )
            rowmap.append(number)
    return rowmap


def _day(value: Any) -> Any:
    """Excel stores a date as a datetime at midnight; write it as the date the clerk typed."""
    if isinstance(value, dt.datetime) and value.time() == dt.time(0) and value.tzinfo is None:
        return value.date()
    return value


_ROW_ZH = re.compile(r"第 (\d+) 行")
_ROW_EN = re.compile(r"\b([Rr]ow|[Ll]ine) (\d+)")


def at_sheet_row(
    exc: ValidationFailed, sheet: str, rowmap: array[int], titles: dict[str, str]
) -> ValidationFailed:
    """``exc`` about data row N of the tidy file, restated for the sheet row the user knows.

    ``titles`` maps column identifiers back to the header text, so the message names the column
    as it is printed in the sheet (出生日期, not chushengriqi).
    """
    row = exc.details.get("row")
    if not isinstance(row, int) or not 1 <= row <= len(rowmap):
        return exc
    sheet_row = rowmap[row - 1]
    column = exc.details.get("column")
    shown = titles.get(column, column) if isinstance(column, str) else column
    zh = _ROW_ZH.sub(f"第 {sheet_row} 行", exc.message_zh, count=1)
    en = _ROW_EN.sub(lambda m: f"{m.group(1)} {sheet_row}", exc.message_en, count=1)
    if isinstance(column, str) and shown != column:
        zh = zh.replace(f"“{column}”", f"“{shown}”")
        en = en.replace(f"'{column}'", f"'{shown}'")
    details = {**exc.details, "row": sheet_row, "sheet": sheet}
    if shown is not None:
        details["column_title"] = shown
    return ValidationFailed(f"工作表“{sheet}”{zh}", f"Sheet '{sheet}': {en}", **details)


def sample_schema(layout: Layout, sample: Any) -> tuple[Any, list[dict[str, str | None]]]:
    """Types proposed from the sampled data rows (for a layout the user just picked, before any
    rewrite of the file), and the first rows as the preview shows them."""
    import pyarrow as pa

    from countylab.ingest.schema import infer_from_batch

    rows = [
        cells
        for number, cells in list(sample.head) + list(sample.tail)
        if number > layout.header_rows[-1] and layout.skip_reason(number, cells) is None
    ]
    columns: list[list[str | None]] = [[] for _ in layout.names]
    for number, cells in enumerate(rows, start=1):
        for j, name in enumerate(layout.names):
            v = _day(cells[j]) if j < len(cells) else None
            columns[j].append(None if v is None or v == "" else cell_text(v, row=number, column=name))
    batch = pa.RecordBatch.from_pydict(
        {n: pa.array(c, pa.string()) for n, c in zip(layout.names, columns, strict=True)}
    )
    preview = [dict(zip(layout.names, r, strict=True)) for r in zip(*columns, strict=True)][:10]
    return infer_from_batch(batch), preview
