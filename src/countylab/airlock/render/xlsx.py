"""XLSX: every sheet shown (hidden ones and hidden rows/columns marked), with comments,
document properties and defined names; released as a new workbook of values only.

The rebuilt workbook has the same sheets, in order, all visible, with the same cells at the
same positions: numbers as numbers, everything else as text (a text starting with = + - @ is
prefixed with ').  It carries no comments, properties of the developer's, defined names,
formulas, styles, hidden state, validation lists or other parts: what was hidden is either
shown in the preview and then released visibly, or not released at all.
"""

from __future__ import annotations

import re

from countylab.airlock.render.model import Limits, Note, Refused, Rendering, Section
from countylab.airlock.render.text import MAX_LINE, BlobGuard, neutralise, normalise
from countylab.airlock.render.xlsx_parse import Sheet, Workbook, col_letters, read_workbook
from countylab.airlock.render.xlsx_write import unique_titles, write_workbook

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Value = str | int | float | bool | None
Grid = list[list[Value]]
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _released(value: str, kind: str) -> str | int | float | bool:
    """The value the rebuilt workbook holds for a cell (and the preview shows)."""
    if kind == "n" and _NUMBER.match(value.strip()):
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "b":
        return value.strip() in ("1", "true")
    text, _ = normalise(value)
    return neutralise(text.rstrip("\n").replace("\t", " ").strip())  # a tab is shown as a space


def _shown(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def _sheet_section(sheet: Sheet, limits: Limits) -> tuple[Section, Grid]:
    rows = sorted({r for r, _ in sheet.cells})
    width = max((c for _, c in sheet.cells), default=0)
    title = f"工作表“{sheet.name}”", f"Sheet {sheet.name!r}"
    sec = Section("table", *title, state="" if sheet.state == "visible" else sheet.state)
    sec.columns = [col_letters(c) for c in range(1, width + 1)]
    sec.header_marks = {c - 1: "hidden_col" for c in sheet.hidden_cols if c <= width}
    guard = BlobGuard(limits)
    grid: Grid = []
    for r in rows:
        values: list[Value] = []
        for c in range(1, width + 1):
            cell = sheet.cells.get((r, c))
            values.append(None if cell is None else _released(cell[0], cell[1]))
        shown = ["" if v is None else _shown(v) for v in values]
        if any(len(cell) > MAX_LINE for cell in shown):
            raise Refused(
                "long_cell",
                f"工作表“{sheet.name}”第 {r} 行有超过 {MAX_LINE} 字符的单元格",
                f"sheet {sheet.name!r} row {r} has a cell longer than {MAX_LINE} characters",
            )
        mark = guard.row(shown, r)
        hidden = r in sheet.hidden_rows or sheet.all_rows_hidden
        if hidden or mark:
            sec.marks[len(sec.rows)] = " ".join(m for m in ("hidden_row" if hidden else "", mark) if m)
        sec.rows.append(shown)
        sec.numbers.append(r)
        grid.append(values)
    return sec, _with_gaps(rows, grid)


def _with_gaps(rows: list[int], grid: Grid) -> Grid:
    """Rows at their sheet positions (empty rows in between), as the rebuilt sheet holds them."""
    out: Grid = []
    for r, values in zip(rows, grid, strict=True):
        out += [[] for _ in range(r - 1 - len(out))]
        out.append(values)
    return out


def _facts(book: Workbook) -> Section:
    sec = Section(
        "facts", "工作簿结构与隐藏内容（不出域）", "Workbook structure and hidden content (not released)"
    )
    for sheet in book.sheets:
        state = {"visible": "可见 visible", "hidden": "隐藏 hidden", "veryHidden": "深度隐藏 very hidden"}
        sec.rows.append([f"sheet: {sheet.name}", state.get(sheet.state, sheet.state)])
        if sheet.hidden_rows or sheet.all_rows_hidden:
            which = "all" if sheet.all_rows_hidden else ", ".join(map(str, sorted(sheet.hidden_rows)[:50]))
            sec.rows.append([f"hidden rows: {sheet.name}", which])
        if sheet.hidden_cols:
            sec.rows.append(
                [
                    f"hidden columns: {sheet.name}",
                    ", ".join(col_letters(c) for c in sorted(sheet.hidden_cols)),
                ]
            )
        for cell, author, text in sheet.comments:
            sec.rows.append([f"comment: {sheet.name}!{cell} ({author})", text])
        for cell_ref, (_, _, formula) in ((k, v) for k, v in sorted(sheet.cells.items()) if v[2]):
            sec.rows.append([f"formula: {sheet.name}!{col_letters(cell_ref[1])}{cell_ref[0]}", "=" + formula])
        if sheet.dropped:
            sec.rows.append([f"not released: {sheet.name}", ", ".join(sorted(sheet.dropped))])
    for name, value in book.defined_names:
        sec.rows.append([f"defined name: {name}", value])
    for part, name, value in book.properties:
        sec.rows.append([f"property: {part} {name}", value])
    if book.shared_phonetic:
        sec.rows.append(["phonetic runs", str(book.shared_phonetic)])
    for member in book.members:
        sec.rows.append(["member", member])
    return sec


def _rebuild(book: Workbook, grids: list[Grid]) -> bytes:
    return write_workbook([(sheet.name, grid) for sheet, grid in zip(book.sheets, grids, strict=True)])


def render_xlsx(data: bytes, limits: Limits) -> Rendering:
    book = read_workbook(data, limits)
    if not book.sheets:
        raise Refused("empty", "工作簿没有工作表", "the workbook has no sheets")
    # Sheet names are text like any other (no invisible characters, no look-alike words), and
    # the preview shows each sheet under the very title the released workbook gives it.
    names = [" ".join(normalise(sheet.name)[0].split()) for sheet in book.sheets]
    for sheet, title in zip(book.sheets, unique_titles(names), strict=True):
        sheet.name = title
    sections: list[Section] = []
    grids: list[Grid] = []
    for sheet in book.sheets:
        sec, grid = _sheet_section(sheet, limits)
        sections.append(sec)
        grids.append(grid)
    notes: list[Note] = []
    hidden = [
        s.name
        for s in book.sheets
        if s.state != "visible" or s.hidden_rows or s.hidden_cols or s.all_rows_hidden
    ]
    if hidden:
        notes.append(
            Note(
                "hidden_made_visible",
                f"隐藏的工作表、行或列（{', '.join(hidden)}）已在预览中标出，出域文件中全部可见",
                f"hidden sheets, rows or columns ({', '.join(hidden)}) are marked here "
                "and visible in the release",
            )
        )
    if any(s.comments for s in book.sheets) or book.properties or book.defined_names:
        notes.append(
            Note(
                "metadata_dropped",
                "批注、文档属性、定义名称和公式列在下方，不随文件出域（出域文件只含单元格的值）",
                "comments, document properties, defined names and formulas are listed below and "
                "are not released (the release holds cell values only)",
            )
        )
    sections.append(_facts(book))
    return Rendering("xlsx", MEDIA_TYPE, _rebuild(book, grids), sections, notes)
