"""Strict readers for output tables (CSV and XLSX), shared by the table checks.

Strict because a checker reasons about the table they see: a ragged row, a stray quote or a
formula would make the parsed table differ from what a spreadsheet shows the developer.  The
readers report every problem with its line (CSV) or cell (XLSX) instead of guessing.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime

from countylab.airlock.checks.base import FileKind, OutputFile
from countylab.airlock.checks.sniff import file_kind, sniff_file

MAX_LISTED = 20
"""Problems of one kind listed in full; the rest are counted."""

_NUMBERISH = re.compile(r"^[+-]?\s*[0-9][0-9,\s]*(\.[0-9]+)?([eE][+-]?[0-9]+)?%?$")


def is_formula(cell: str) -> bool:
    """A cell a spreadsheet would evaluate: ``=`` anything, ``@`` anything, ``+``/``-``
    followed by something that is not a plain number (``-5``, ``+86 139…`` and a lone ``-``
    are values).  Leading whitespace, tabs and carriage returns, format characters and
    full-width forms (＝) do not hide it."""
    text = unicodedata.normalize("NFKC", "".join(c for c in cell if unicodedata.category(c) != "Cf"))
    text = text.lstrip(" \t\r\n\"'")
    if not text or text[0] not in "=+-@":
        return False
    if text[0] in "=@":
        return len(text) > 1 or text == "="
    rest = text[1:].strip()
    return bool(rest) and not set(rest) <= {"-", "—"} and _NUMBERISH.match(text) is None


def _formula_problem(line: int, column: str, sheet: str | None = None, cell: str | None = None) -> Problem:
    where_zh = f"工作表“{sheet}”单元格 {cell}" if sheet else f"第 {line} 行“{column}”列"
    where_en = f"sheet {sheet!r} cell {cell}" if sheet else f"line {line} column {column!r}"
    return Problem(
        "formula",
        f"{where_zh}是公式（= + - @ 开头）",
        f"{where_en} is a formula (starts with = + - @)",
        line,
        sheet,
        cell,
    )


@dataclass(frozen=True)
class Problem:
    reason: str  # machine-readable: malformed_row, hidden_sheet, formula, external_link, macro…
    message_zh: str
    message_en: str
    line: int | None = None
    sheet: str | None = None
    cell: str | None = None


@dataclass
class Table:
    """One parsed table: text cells, with the file line (CSV) or sheet row (XLSX) of each row."""

    header: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    sheet: str | None = None

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [r[i] for r in self.rows]


@dataclass
class Parsed:
    tables: list[Table]
    problems: list[Problem]


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def read_csv(text: str, delimiter: str = ",") -> Parsed:
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    table: Table | None = None
    try:
        for row in reader:
            if table is None:
                table = Table(tuple(c.strip() for c in row))
                if not row or any(not c.strip() for c in row):
                    problems.append(
                        Problem("bad_header", "表头为空或含空列名", "empty header or column name", 1)
                    )
                problems += [_formula_problem(1, "header") for c in row if is_formula(c)][:1]
                continue
            if len(row) != len(table.header):
                if len(problems) < MAX_LISTED:
                    problems.append(
                        Problem(
                            "malformed_row",
                            f"第 {reader.line_num} 行有 {len(row)} 列，表头有 {len(table.header)} 列",
                            f"line {reader.line_num} has {len(row)} fields, the header {len(table.header)}",
                            reader.line_num,
                        )
                    )
                continue
            table.rows.append(tuple(c.strip() for c in row))
            table.lines.append(reader.line_num)
            for col, c in zip(table.header, row, strict=True):
                if is_formula(c) and sum(p.reason == "formula" for p in problems) < MAX_LISTED:
                    problems.append(_formula_problem(reader.line_num, col))
    except csv.Error as exc:
        problems.append(
            Problem(
                "malformed_row",
                f"第 {reader.line_num + 1} 行格式错误：{exc}",
                f"line {reader.line_num + 1} is malformed: {exc}",
                reader.line_num + 1,
            )
        )
    if table is None:
        problems.append(Problem("empty", "表格为空", "the table is empty"))
        return Parsed([], problems)
    return Parsed([table], problems)


def _zip_problems(data: bytes) -> list[Problem]:
    problems: list[Problem] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        types = (
            zf.read("[Content_Types].xml").decode("utf-8", "replace")
            if "[Content_Types].xml" in names
            else ""
        )
    if any(n.lower().endswith("vbaproject.bin") for n in names) or "macroEnabled" in types:
        problems.append(Problem("macro", "工作簿含宏（VBA）", "the workbook contains macros (VBA)"))
    if any(n.startswith("xl/externalLinks/") for n in names):
        problems.append(Problem("external_link", "工作簿含外部链接", "the workbook contains external links"))
    return problems


def read_xlsx(data: bytes) -> Parsed:
    from openpyxl import load_workbook

    problems = _zip_problems(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns about unsupported extensions it skips
        wb = load_workbook(io.BytesIO(data), data_only=False, keep_links=True)
    tables: list[Table] = []
    formulas = 0
    try:
        for ws in wb.worksheets:
            if ws.sheet_state != "visible":
                problems.append(
                    Problem(
                        "hidden_sheet",
                        f"工作表“{ws.title}”被隐藏",
                        f"sheet {ws.title!r} is hidden",
                        sheet=ws.title,
                    )
                )
            table: Table | None = None
            for row in ws.iter_rows():
                for c in row:
                    if c.data_type == "f" or (isinstance(c.value, str) and is_formula(c.value)):
                        formulas += 1
                        if formulas <= MAX_LISTED:
                            problems.append(
                                Problem(
                                    "formula",
                                    f"工作表“{ws.title}”单元格 {c.coordinate} 含公式",
                                    f"sheet {ws.title!r} cell {c.coordinate} holds a formula",
                                    sheet=ws.title,
                                    cell=c.coordinate,
                                )
                            )
                values = [_cell_text(c.value) for c in row]
                while values and values[-1] == "":
                    values.pop()
                if not values:
                    continue
                line = row[0].row
                if table is None:
                    table = Table(tuple(values), sheet=ws.title)
                    continue
                if len(values) > len(table.header):
                    problems.append(
                        Problem(
                            "malformed_row",
                            f"工作表“{ws.title}”第 {line} 行超出表头宽度",
                            f"sheet {ws.title!r} row {line} is wider than the header",
                            line,
                            ws.title,
                        )
                    )
                    continue
                values += [""] * (len(table.header) - len(values))
                table.rows.append(tuple(values))
                table.lines.append(line if isinstance(line, int) else 0)
            if table is not None:
                tables.append(table)
    finally:
        wb.close()
    if getattr(wb, "_external_links", None) and not any(p.reason == "external_link" for p in problems):
        problems.append(Problem("external_link", "工作簿含外部链接", "the workbook contains external links"))
    return Parsed(tables, problems)


def read_tables(file: OutputFile) -> Parsed | None:
    """The tables in a CSV or XLSX output, or None for other kinds."""
    kind = file_kind(file)
    if kind is FileKind.csv:
        text = sniff_file(file).text or ""
        return read_csv(text, "\t" if file.suffix == ".tsv" else ",")
    if kind is FileKind.xlsx:
        return read_xlsx(file.read())
    return None
