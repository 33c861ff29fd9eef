"""Batch prediction from a spreadsheet: a CSV or XLSX whose header names the model's fields.

County staff keep lists in WPS/Excel; a header may use the field's name (``town``) or its
catalog title (``乡镇代码``/``乡镇``).  The file is read here, in the web process, into named
records that go through the same validation and encoding as JSON records
(:mod:`.schema`); the model's sandboxed worker never sees the file.  CSV is read as UTF-8 (with
or without BOM) and falls back to GB18030, which is what Excel on a Chinese Windows writes.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from countylab.errors import ValidationFailed
from countylab.serving.schema import InputSchema

MAX_BYTES = 2 * 1024 * 1024


def _text(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationFailed(
        "无法识别文件编码（请另存为 UTF-8 CSV）", "cannot decode the file; save it as UTF-8 CSV"
    )


def _grid(name: str, data: bytes, max_rows: int) -> list[list[Any]]:
    if len(data) > MAX_BYTES:
        raise ValidationFailed(
            "文件过大（最多 2 MB）", "the file is too large (2 MB at most)", reason="too_large"
        )
    if name.lower().endswith(".xlsx"):
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception:  # noqa: BLE001 - any unreadable workbook gets one answer
            raise ValidationFailed(
                "无法读取该 XLSX 文件", "the XLSX file cannot be read", reason="xlsx"
            ) from None
        try:
            sheet = wb.worksheets[0]
            grid = []
            for row in sheet.iter_rows(values_only=True):
                grid.append(list(row))
                if len(grid) > max_rows + 1:
                    break
            return grid
        finally:
            wb.close()
    if not name.lower().endswith((".csv", ".txt")):
        raise ValidationFailed("只接受 CSV 或 XLSX 文件", "upload a CSV or XLSX file", reason="file_type")
    return [list(r) for r in csv.reader(io.StringIO(_text(data)))][: max_rows + 2]


def records_from_upload(name: str, data: bytes, schema: InputSchema, max_rows: int) -> list[dict[str, Any]]:
    """Named records from a spreadsheet; blank rows are skipped, unknown headers refused."""
    grid = [r for r in _grid(name, data, max_rows) if any(c not in (None, "") for c in r)]
    if not grid:
        raise ValidationFailed("文件是空的", "the file is empty", reason="empty")
    header = [str(c or "").strip() for c in grid[0]]
    lookup: dict[str, str] = {}
    for f in schema.fields:
        for key in (f.name, f.column, f.title):
            if key:
                lookup.setdefault(key, f.name)
    names: list[str] = []
    for i, h in enumerate(header, start=1):
        if h not in lookup:
            raise ValidationFailed(
                f"第 {i} 列的列名“{h}”不是模型的输入字段（可用：{'、'.join(f.name for f in schema.fields)}）",
                f"column {i} header {h!r} is not an input field "
                f"(the fields are: {', '.join(f.name for f in schema.fields)})",
                row=1,
                column=h or str(i),
                reason="unknown_field",
            )
        names.append(lookup[h])
    body = grid[1:]
    if len(body) > max_rows:
        raise ValidationFailed(
            f"每次最多预测 {max_rows} 行", f"at most {max_rows} rows per call", reason="rows"
        )
    return [{n: v for n, v in zip(names, row, strict=False)} for row in body]
