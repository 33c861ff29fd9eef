"""The layout of a spreadsheet as departments fill it in: where the header is, which rows are data.

A county 花名册 is not a table with its header on row 1.  It opens with a title merged across the
columns and a 填报单位/填报日期 line, its header may take two rows (a group such as 联系方式 over
手机/座机), and it closes with 合计/小计 rows, a 制表人/审核人 line, notes and blank rows.
Refusing such a file ("第 2 列的列名为空") sends the clerk back to retype it; this module finds the
header instead, says which rows it skips and why, and lets the user correct both before anything
is written.

The header is the first row that is not a title or a 填报 line and looks like one: at least half
as many cells as the widest row, mostly text or words headers use (姓名, 身份证, 出生日期…).
Taking the *first* such row matters: data rows of text (青禾镇, 城关街道) look like headers too,
and a plain CSV must keep reading its row 1.  A row right below it (or above) that fills its
gaps with text is a second header row (基本情况 over 出生日期/年龄).  Rows are then classified
one by one, so a mid-table 小计 is skipped too.

Pure functions over rows of Python values; the readers at the bottom stream CSV (UTF-8/GBK), XLSX
and XLS, so the whole file is never held in memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from countylab.errors import ValidationFailed
from countylab.ingest.encoding import detect_encoding

#: Why a row is not data; the UI shows the Chinese/English label from ``upload.skip.<code>``.
SKIP_REASONS = ("before_header", "title", "filing", "total", "signature", "note", "blank", "user")

HEADER_WORDS = (
    "序号", "编号", "姓名", "名称", "性别", "民族", "身份证", "证件", "号码", "出生", "年龄", "日期",
    "时间", "地址", "住址", "户籍", "电话", "手机", "联系", "乡镇", "街道", "村", "社区", "组",
    "金额", "数量", "人数", "面积", "类别", "类型", "状态", "备注", "单位", "职业", "学历", "文化",
    "婚姻", "关系", "户主", "标准", "补助", "收入", "代码", "级别", "等级", "是否",
)  # fmt: skip
_FILING = re.compile(r"^(填报|填表|报送|统计)?(单位|日期|时间|部门)[:：]|^(填报|填表|报送)(单位|日期|时间)")
_TOTAL = re.compile(r"^(合计|总计|小计|累计|总数|共计)([:：（(\d]|$)")
_SIGNATURE = re.compile(
    r"^(制表人?|审核人?|填表人|填报人|负责人|经办人|统计人|单位负责人|分管领导|主管领导)[:：]?"
)
_NOTE = re.compile(r"^(备注|说明|注[:：]|填表说明|注\d)")
_NUMBER = re.compile(r"^[-+]?\d[\d,]*(\.\d+)?%?$")
_MAX_HEADER_SCAN = 30
_MAX_HEADER_ROWS = 3


@dataclass(frozen=True)
class Layout:
    """Where the data is.  Row numbers are 1-based sheet (or CSV line-record) numbers."""

    sheet: str
    header_rows: tuple[int, ...]
    names: tuple[str, ...]  # one per column: the header text, multi-row headers joined
    generated: tuple[int, ...] = ()  # 0-based columns whose header was empty: named 列N
    user_skip: frozenset[int] = frozenset()
    detected: bool = True  # False when the user chose the header row

    @property
    def width(self) -> int:
        return len(self.names)

    @property
    def data_start(self) -> int:
        return self.header_rows[-1] + 1

    @property
    def trivial(self) -> bool:
        """Header on row 1, one header row, every name given: the file is already a plain table."""
        return self.header_rows == (1,) and not self.generated

    def skip_reason(self, number: int, cells: Sequence[Any]) -> str | None:
        """Why row ``number`` is not data, or None when it is."""
        if number < self.header_rows[0]:
            return classify_top(cells) or "before_header"
        if number <= self.header_rows[-1]:
            return None  # a header row, shown as such
        if number in self.user_skip:
            return "user"
        return classify_row(cells)


@dataclass
class Sample:
    """What the confirmation page shows: the first rows, the last rows and how many in all."""

    sheet: str
    head: list[tuple[int, tuple[Any, ...]]]
    tail: list[tuple[int, tuple[Any, ...]]] = field(default_factory=list)
    total_rows: int = 0
    encoding: str | None = None


# ------------------------------------------------------------------------------ classifying rows


def _text(value: Any) -> str:
    if value is None:
        return ""
    return re.sub(r"\s+", "", str(value))


def _is_texty(value: Any) -> bool:
    """A header-like cell: text that is not a number or a date."""
    if value is None or isinstance(value, bool | int | float | dt.date | dt.time):
        return False
    s = _text(value)
    return bool(s) and not _NUMBER.match(s) and not re.match(r"^\d{4}[-/.年]\d{1,2}", s)


def _nonempty(cells: Sequence[Any]) -> list[Any]:
    return [c for c in cells if _text(c)]


def classify_top(cells: Sequence[Any]) -> str | None:
    """Rows above the header: a title (one text cell) or a 填报单位/填报日期 line."""
    values = _nonempty(cells)
    if not values:
        return "blank"
    if any(_FILING.search(_text(v)) for v in values):
        return "filing"
    if len(values) == 1:
        return "title"
    return None


def classify_row(cells: Sequence[Any]) -> str | None:
    """Rows below the header that are not data: blank, 合计/小计, 制表人/审核人, notes, 填报 lines."""
    values = _nonempty(cells)
    if not values:
        return "blank"
    lead = [_text(v) for v in values[:2]]
    if any(_TOTAL.match(t) for t in lead):
        return "total"
    texts = [_text(v) for v in values if isinstance(v, str)]
    if any(_SIGNATURE.match(t) and (len(t) <= 4 or re.search(r"[:：]", t)) for t in texts):
        return "signature"
    if _NOTE.match(lead[0]) and len(values) <= 2:
        return "note"
    if any(_FILING.search(t) for t in texts) and len(values) <= 3:
        return "filing"
    return None


# ------------------------------------------------------------------------------- header finding


def _looks_like_header(cells: Sequence[Any], widest: int) -> bool:
    """Most cells of the table filled, mostly with text (or with words headers use), and not a
    title, 填报单位 line or footer."""
    values = _nonempty(cells)
    if len(values) < 2 or classify_top(cells) is not None or classify_row(cells) is not None:
        return False
    texts = [_text(v) for v in values if _is_texty(v)]
    worded = sum(1 for t in texts if len(t) <= 12 and any(w in t for w in HEADER_WORDS))
    return len(values) >= widest / 2 and (len(texts) >= 0.6 * len(values) or worded >= 2)


def _fills_gaps(row: Sequence[Any], header: Sequence[Any]) -> bool:
    """``row`` could be another header row next to ``header``: all text, and it has text where
    the header is empty (the other half of a merged cell)."""
    values = _nonempty(row)
    if len(values) < 1 or not all(_is_texty(v) for v in values):
        return False
    if classify_top(row) == "filing" or classify_row(row) is not None:
        return False
    width = max(len(row), len(header))
    return any(_text(_at(row, j)) and not _text(_at(header, j)) for j in range(width)) and any(
        _text(_at(header, j)) and not _text(_at(row, j)) for j in range(width)
    )


def _at(row: Sequence[Any], j: int) -> Any:
    return row[j] if j < len(row) else None


def find_header(rows: Sequence[tuple[int, Sequence[Any]]]) -> tuple[int, ...]:
    """The sheet rows of the header (one to three), from the first rows of the sheet."""
    scan = [(n, r) for n, r in rows[:_MAX_HEADER_SCAN] if _nonempty(r)]
    if not scan:
        raise ValidationFailed(
            "文件为空：没有数据行", "The file is empty: it has no data rows", reason="empty"
        )
    widest = max(len(_nonempty(r)) for _, r in scan)
    for i, (_, cells) in enumerate(scan):
        if _looks_like_header(cells, widest) or (
            i + 1 < len(scan)
            and len(_nonempty(cells)) >= 2
            and _fills_gaps(scan[i + 1][1], cells)
            and classify_top(cells) is None
        ):
            return _extend(scan, i)
    # no row looks like a header: the first row that is neither a title nor a 填报 line
    for i, (_, cells) in enumerate(scan):
        if classify_top(cells) is None:
            return _extend(scan, i)
    return (scan[0][0],)


def _extend(scan: Sequence[tuple[int, Sequence[Any]]], index: int) -> tuple[int, ...]:
    """The header rows around ``scan[index]``: adjacent rows that fill its gaps with text."""
    first = last = index
    # a group row above (基本情况 over 出生日期/年龄) or a sub-header row below
    while (
        first > 0 and last - first + 1 < _MAX_HEADER_ROWS and _fills_gaps(scan[first - 1][1], scan[first][1])
    ):
        if scan[first - 1][0] != scan[first][0] - 1:
            break
        first -= 1
    while (
        last + 1 < len(scan)
        and last - first + 1 < _MAX_HEADER_ROWS
        and scan[last + 1][0] == scan[last][0] + 1
        and _fills_gaps(scan[last + 1][1], scan[last][1])
    ):
        last += 1
    return tuple(n for n, _ in scan[first : last + 1])


def header_names(
    header: Sequence[Sequence[Any]], data: Sequence[Sequence[Any]]
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Column names from one or more header rows, and the columns that had no header text.

    A merged group cell is read only in its first column (openpyxl and xlrd give ``None`` for
    the rest), so a gap in an upper row under which a lower row has text repeats the group to
    its left.  The name is the lowest text (手机); where two columns would share it, the path
    (联系方式-手机).  Trailing columns with neither header nor data are dropped.
    """
    width = max([len(r) for r in header] + [0])
    last_data = max([j + 1 for r in data for j, v in enumerate(r) if _text(v)] + [0])
    last_head = max([j + 1 for r in header for j, v in enumerate(r) if _text(v)] + [0])
    width = min(width if width else last_data, max(last_head, last_data)) or last_data
    width = max(width, last_data)
    paths: list[list[str]] = []
    for j in range(width):
        parts: list[str] = []
        for level, row in enumerate(header):
            value = str(_at(row, j) or "").strip()
            if not value and level < len(header) - 1 and any(_text(_at(r, j)) for r in header[level + 1 :]):
                k = j - 1
                while k >= 0 and not _text(_at(row, k)):
                    k -= 1
                # carry a group name right only over columns that a lower row splits
                if k >= 0 and any(_text(_at(r, k)) for r in header[level + 1 :]):
                    value = str(_at(row, k)).strip()
            value = re.sub(r"\s+", " ", value)
            if value and (not parts or parts[-1] != value):
                parts.append(value)
        paths.append(parts)
    leaves = [p[-1] if p else "" for p in paths]
    names: list[str] = []
    generated: list[int] = []
    for j, parts in enumerate(paths):
        if not parts:
            names.append(f"列{j + 1}")
            generated.append(j)
        elif leaves.count(parts[-1]) > 1 and len(parts) > 1:
            names.append("-".join(parts))
        else:
            names.append(parts[-1])
    # names must be unique (ignoring case); number repeats so the file is not refused for that
    seen: dict[str, int] = {}
    for j, n in enumerate(names):
        key = n.casefold()
        if key in seen:
            seen[key] += 1
            names[j] = f"{n}_{seen[key]}"
        else:
            seen[key] = 1
    return tuple(names), tuple(generated)


def detect(sample: Sample, *, header_row: int | None = None, skip_rows: Iterable[int] = ()) -> Layout:
    """The layout of ``sample``; ``header_row`` (1-based) overrides the detected header."""
    rows = sample.head
    if header_row is not None:
        numbers = [n for n, _ in rows]
        if header_row not in numbers:
            raise ValidationFailed(
                f"表头行 {header_row} 超出了预览范围（第 {numbers[0]}–{numbers[-1]} 行）",
                f"Header row {header_row} is outside the preview (rows {numbers[0]}–{numbers[-1]})",
                reason="bad_header_row",
                row=header_row,
            )
        scan = [(n, r) for n, r in rows if n >= header_row and _nonempty(r)]
        header = _extend(scan, 0) if scan and scan[0][0] == header_row else (header_row,)
        detected = False
    else:
        header = find_header(rows)
        detected = True
    by_no = dict(rows)
    data = [r for n, r in rows if n > header[-1] and classify_row(r) is None][:50]
    names, generated = header_names([by_no[n] for n in header], data)
    if not names:
        raise ValidationFailed(
            f"第 {header[0]} 行没有列名",
            f"Row {header[0]} has no column names",
            row=header[0],
            reason="no_header",
        )
    return Layout(sample.sheet, header, names, generated, frozenset(skip_rows), detected)


def parse_skip(text: str) -> frozenset[int]:
    """``"1-3, 25"`` → {1, 2, 3, 25}; the skip box of the confirmation page and the API."""
    out: set[int] = set()
    for part in re.split(r"[,，、\s]+", text.strip()):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:[-–~至到](\d+))?", part)
        if m is None:
            raise ValidationFailed(
                f"跳过的行“{part}”无法识别：请写成 1-3, 25 这样的行号",
                f"Cannot read the rows to skip '{part}': write row numbers like 1-3, 25",
                reason="bad_skip_rows",
                field="skip_rows",
            )
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo < 1 or hi < lo or hi - lo > 1_000_000:
            raise ValidationFailed(
                f"跳过的行“{part}”无效",
                f"Invalid rows to skip '{part}'",
                reason="bad_skip_rows",
                field="skip_rows",
            )
        out.update(range(lo, hi + 1))
    return frozenset(out)


# -------------------------------------------------------------------------------------- readers


def sheet_rows(path: Path, fmt: str) -> tuple[str, Iterator[tuple[int, tuple[Any, ...]]]]:
    """The first sheet's name and its rows as (1-based number, values), streamed."""
    if fmt == "csv":
        encoding = detect_encoding(path)
        return path.stem, _csv_rows(path, encoding)
    if fmt == "xlsx":
        return _xlsx_rows(path)
    if fmt == "xls":
        return _xls_rows(path)
    raise ValidationFailed(f"不支持的格式“{fmt}”", f"Unsupported format '{fmt}'", reason="unsupported_format")


def _csv_rows(path: Path, encoding: str) -> Iterator[tuple[int, tuple[Any, ...]]]:
    with path.open("r", encoding=encoding, newline="", errors="strict") as handle:
        reader = csv.reader(handle)
        number = 0
        try:
            for record in reader:
                number += 1
                yield number, tuple(v if v != "" else None for v in record)
        except UnicodeDecodeError:
            raise ValidationFailed(
                f"第 {number + 1} 行附近的编码无效：请另存为 UTF-8 或 GBK 编码的 CSV",
                f"Invalid encoding near row {number + 1}: save the file as UTF-8 or GBK CSV",
                row=number + 1,
                reason="encoding",
            ) from None
        except csv.Error as exc:
            raise ValidationFailed(
                f"第 {number + 1} 行无法解析：{exc}",
                f"Row {number + 1} cannot be parsed: {exc}",
                row=number + 1,
                reason="parse_error",
            ) from None


def _xlsx_rows(path: Path) -> tuple[str, Iterator[tuple[int, tuple[Any, ...]]]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        sheet = book.worksheets[0]
    except Exception:  # openpyxl raises many kinds for a non-xlsx or broken zip
        raise ValidationFailed(
            "XLSX 文件无法打开或已损坏", "The XLSX file cannot be opened or is damaged", reason="corrupt_file"
        ) from None

    def rows() -> Iterator[tuple[int, tuple[Any, ...]]]:
        try:
            for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield number, tuple(cells)
        finally:
            book.close()

    return str(sheet.title), rows()


def _xls_rows(path: Path) -> tuple[str, Iterator[tuple[int, tuple[Any, ...]]]]:
    """Old Excel 97–2003 files (WPS still saves them) via xlrd; dates become dates."""
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
        sheet = book.sheet_by_index(0)
    except Exception:  # xlrd raises XLRDError, struct.error, … for broken files
        raise ValidationFailed(
            "XLS 文件无法打开或已损坏", "The XLS file cannot be opened or is damaged", reason="corrupt_file"
        ) from None

    def value(cell: Any) -> Any:
        if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
            return None
        if cell.ctype == xlrd.XL_CELL_DATE:
            when = xlrd.xldate.xldate_as_datetime(cell.value, book.datemode)
            return when.date() if when.time() == dt.time(0) else when
        if cell.ctype == xlrd.XL_CELL_NUMBER:
            v = float(cell.value)
            return int(v) if v.is_integer() else v
        if cell.ctype == xlrd.XL_CELL_BOOLEAN:
            return bool(cell.value)
        if cell.ctype == xlrd.XL_CELL_ERROR:
            return None
        return cell.value

    def rows() -> Iterator[tuple[int, tuple[Any, ...]]]:
        try:
            for r in range(sheet.nrows):
                yield r + 1, tuple(value(c) for c in sheet.row(r))
        finally:
            book.release_resources()

    return str(sheet.name), rows()


def read_sample(path: Path, fmt: str, *, head: int = 40, tail: int = 8) -> Sample:
    """The first ``head`` and last ``tail`` rows of the first sheet, and its number of rows."""
    name, rows = sheet_rows(path, fmt)
    first: list[tuple[int, tuple[Any, ...]]] = []
    last: deque[tuple[int, tuple[Any, ...]]] = deque(maxlen=tail)
    total = 0
    for number, cells in rows:
        total = number
        if number <= head:
            first.append((number, cells))
        else:
            last.append((number, cells))
    return Sample(name, first, list(last), total, detect_encoding(path) if fmt == "csv" else None)


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ") if value.time() != dt.time(0) else value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def describe(layout: Layout, sample: Sample) -> dict[str, Any]:
    """The layout as the confirmation page and the API show it: every sampled row with its role
    (``header``, ``data`` or ``skip`` with a reason), so the user sees what will be read."""
    width = max([layout.width] + [len(c) for _, c in sample.head[:20]])

    def row(number: int, cells: Sequence[Any]) -> dict[str, Any]:
        reason = layout.skip_reason(number, cells)
        role = "header" if number in layout.header_rows else ("skip" if reason else "data")
        padded = [_shown(v) for v in cells[:width]] + [""] * max(0, width - len(cells))
        return {"row": number, "role": role, "reason": reason, "cells": padded}

    rows = [row(n, c) for n, c in sample.head]
    tail = [row(n, c) for n, c in sample.tail]
    return {
        "sheet": layout.sheet,
        "header_rows": list(layout.header_rows),
        "detected": layout.detected,
        "columns": [{"header": h, "generated": j in layout.generated} for j, h in enumerate(layout.names)],
        "skip_rows": sorted(layout.user_skip),
        "total_rows": sample.total_rows,
        "width": width,
        "rows": rows,
        "tail": tail,
        "gap": bool(tail) and tail[0]["row"] > (rows[-1]["row"] + 1 if rows else 1),
    }
