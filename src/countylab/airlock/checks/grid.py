"""A table's measure cells as a grid with its totals, for structural and recovery checks.

Tables arrive in two layouts: *wide* (label columns, then one measure column per category,
maybe a total column) and *long* (label columns and one measure column; a two-label long
table is pivoted into a cross-tab).  Both become a :class:`Grid`: body cells (a number,
``None`` where suppressed) plus the row and column totals the table printed.  The totals
give linear equations; :func:`recoverable_cells` solves the ones with a single unknown,
repeatedly, which is exactly what a reader with a pencil can do to undo a suppression.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from countylab.airlock.checks.tables import Table

TOTAL_WORDS = frozenset(
    {"合计", "总计", "小计", "总数", "全部", "总体", "total", "totals", "all", "sum", "overall"}
)
SUPPRESSION_MARKERS = frozenset({"", "*", "**", "***", "x", "X", "c", "C", "..", "-", "—", "–", "n/a", "NA"})
_BOUND_MARKER = re.compile(r"^[<≤＜]\s*=?\s*\d+$")
_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")

Key = tuple[str, int, int]  # ("b", row, col) body cell, ("r", row, 0) row total, ("c", 0, col), ("g", 0, 0)


def is_total_label(value: str) -> bool:
    return value.strip().lower() in TOTAL_WORDS


def is_suppressed(value: str) -> bool:
    v = value.strip()
    return v in SUPPRESSION_MARKERS or _BOUND_MARKER.match(v) is not None


def parse_number(value: str) -> float | None:
    v = value.strip()
    if not _NUMBER.match(v):
        return None
    return float(v.replace(",", ""))


@dataclass
class Grid:
    """Measure cells by (row, col) index.  A missing body key is a category the table omitted."""

    row_labels: list[str]
    col_labels: list[str]
    body: dict[tuple[int, int], float | None] = field(default_factory=dict)
    where: dict[tuple[int, int], tuple[int, str]] = field(default_factory=dict)  # (line, column)
    row_totals: dict[int, float | None] = field(default_factory=dict)
    col_totals: dict[int, float | None] = field(default_factory=dict)
    grand: list[float | None] = field(default_factory=list)  # zero or one entry


def _cell(value: str) -> float | None | str:
    if is_suppressed(value):
        return None
    n = parse_number(value)
    return "bad" if n is None else n


def build_grids(table: Table, labels: Sequence[str], measures: Sequence[str]) -> list[Grid]:
    """Grids of ``measures`` (one grid for a wide table, one per measure for a long one)."""
    li = [table.header.index(c) for c in labels]
    mi = {c: table.header.index(c) for c in measures}
    totals = [c for c in measures if is_total_label(c)]
    body_cols = [c for c in measures if c not in totals]
    if len(body_cols) >= 2:
        return [_wide(table, li, body_cols, mi, totals[0] if len(totals) == 1 else None)]
    grids: list[Grid] = []
    for col in body_cols:
        if len(li) == 1:
            grids.append(_long(table, li[0], [li[0]], col, mi[col]))
        elif len(li) == 2:
            grids.append(_long(table, li[0], li, col, mi[col]))
    return grids


def _wide(table: Table, li: list[int], cols: list[str], mi: dict[str, int], total: str | None) -> Grid:
    grid = Grid([], list(cols))
    total_rows: list[tuple[str, ...]] = []
    for row, line in zip(table.rows, table.lines, strict=True):
        if any(is_total_label(row[i]) for i in li):
            total_rows.append(row)
            continue
        r = len(grid.row_labels)
        grid.row_labels.append(" / ".join(row[i] for i in li))
        for c, name in enumerate(cols):
            v = _cell(row[mi[name]])
            if isinstance(v, str):
                continue
            grid.body[(r, c)] = v
            grid.where[(r, c)] = (line, name)
        if total is not None:
            t = _cell(row[mi[total]])
            if not isinstance(t, str):
                grid.row_totals[r] = t
    if len(total_rows) == 1:
        for c, name in enumerate(cols):
            v = _cell(total_rows[0][mi[name]])
            if not isinstance(v, str):
                grid.col_totals[c] = v
        if total is not None:
            g = _cell(total_rows[0][mi[total]])
            if not isinstance(g, str):
                grid.grand.append(g)
    return grid


def _long(table: Table, first: int, li: list[int], col: str, ci: int) -> Grid:
    second = li[1] if len(li) == 2 else None
    grid = Grid([], [col] if second is None else [])
    rows: dict[str, int] = {}
    cols: dict[str, int] = {} if second is not None else {col: 0}
    for row, line in zip(table.rows, table.lines, strict=True):
        v = _cell(row[ci])
        if isinstance(v, str):
            continue
        a = row[first]
        b = row[second] if second is not None else col
        a_total, b_total = is_total_label(a), second is not None and is_total_label(b)
        if not a_total:
            rows.setdefault(a, len(rows))
        if not b_total:
            cols.setdefault(b, len(cols))
        if a_total and b_total:
            grid.grand.append(v)
        elif a_total:
            grid.col_totals[cols[b]] = v
        elif b_total:
            grid.row_totals[rows[a]] = v
        else:
            grid.body[(rows[a], cols[b])] = v
            grid.where[(rows[a], cols[b])] = (line, col)
    grid.row_labels = list(rows)
    grid.col_labels = list(cols)
    if len(grid.grand) > 1:
        grid.grand = []
    return grid


def _equations(grid: Grid) -> list[tuple[list[Key], Key]]:
    nrows, ncols = len(grid.row_labels), len(grid.col_labels)
    eqs: list[tuple[list[Key], Key]] = []
    for r in grid.row_totals:
        eqs.append(([("b", r, c) for c in range(ncols)], ("r", r, 0)))
    for c in grid.col_totals:
        eqs.append(([("b", r, c) for r in range(nrows)], ("c", 0, c)))
    if grid.grand:
        if len(grid.row_totals) == nrows:
            eqs.append(([("r", r, 0) for r in range(nrows)], ("g", 0, 0)))
        if len(grid.col_totals) == ncols:
            eqs.append(([("c", 0, c) for c in range(ncols)], ("g", 0, 0)))
    return eqs


def recoverable_cells(grid: Grid) -> list[tuple[int, int]]:
    """Suppressed body cells whose value follows from the totals (and omitted cells that are
    not zero).  Solved by repeated substitution, so chains of recoveries are found too."""
    known: dict[Key, float] = {}
    for (r, c), v in grid.body.items():
        if v is not None:
            known[("b", r, c)] = v
    for r, v in grid.row_totals.items():
        if v is not None:
            known[("r", r, 0)] = v
    for c, v in grid.col_totals.items():
        if v is not None:
            known[("c", 0, c)] = v
    if grid.grand and grid.grand[0] is not None:
        known[("g", 0, 0)] = grid.grand[0]
    eqs = _equations(grid)
    progress = True
    while progress:
        progress = False
        for members, total in eqs:
            unknown = [k for k in [*members, total] if k not in known]
            if len(unknown) != 1:
                continue
            k = unknown[0]
            if k == total:
                known[k] = sum(known[m] for m in members)
            else:
                known[k] = known[total] - sum(known[m] for m in members if m != k)
            progress = True
    found: list[tuple[int, int]] = []
    for r in range(len(grid.row_labels)):
        for c in range(len(grid.col_labels)):
            key = ("b", r, c)
            if key not in known:
                continue
            if (
                (r, c) in grid.body
                and grid.body[(r, c)] is None
                or (r, c) not in grid.body
                and abs(known[key]) > 1e-9
            ):
                found.append((r, c))
    return found


def structural_lines(grid: Grid) -> list[tuple[str, str]]:
    """Rows and columns (≥2 cells, none suppressed) where every cell but one is zero: the
    whole group shares one category, which discloses it for each member."""
    nrows, ncols = len(grid.row_labels), len(grid.col_labels)
    out: list[tuple[str, str]] = []

    def check(kind: str, label: str, cells: list[float | None]) -> None:
        if len(cells) < 2 or any(v is None for v in cells):
            return
        nonzero = sum(1 for v in cells if v)
        if nonzero == 1:
            out.append((kind, label))

    if ncols >= 2:
        for r in range(nrows):
            check("row", grid.row_labels[r], [grid.body.get((r, c), 0.0) for c in range(ncols)])
    if nrows >= 2:
        for c in range(ncols):
            check("column", grid.col_labels[c], [grid.body.get((r, c), 0.0) for r in range(nrows)])
    return out
