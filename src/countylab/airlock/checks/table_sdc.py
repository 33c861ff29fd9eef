"""Rule (c): ACRO-like disclosure rules on output tables.

* threshold: every count cell (a declared count column, or an all-integer measure column of a
  group-by table) is 0 or ≥ ``min_units``;
* p% and (n, k) dominance on declared magnitude (sum) columns, from the per-cell unit
  contributions the job computed; without them the table must at least carry its counts,
  and the checker is warned that dominance was not checked;
* zeros (warn: the checker confirms they are structural) and structural disclosure (a row or
  column where all cells but one are zero: everyone in the group shares one category);
* suppressed cells (blank, ``*``, ``<10`` …) must not be recoverable from printed totals.

The cell rules themselves live in :mod:`countylab.privacy.sdc` so the SDC gateway and the
airlock cannot disagree about what a safe cell is.
"""

from __future__ import annotations

from countylab.airlock.checks.base import (
    CheckContext,
    CheckResult,
    CheckStatus,
    FileKind,
    Findings,
    OutputFile,
    TableSpec,
)
from countylab.airlock.checks.grid import (
    build_grids,
    is_suppressed,
    is_total_label,
    parse_number,
    recoverable_cells,
    structural_lines,
)
from countylab.airlock.checks.sniff import file_kind
from countylab.airlock.checks.tables import MAX_LISTED, Table, read_tables
from countylab.privacy.sdc import SdcRules, cell_stats, check_magnitude

name = "table_sdc"

# Columns that hold keys or periods, not measures, even when every value is an integer.
_LABEL_HINTS = (
    "年",
    "月",
    "日",
    "季",
    "代码",
    "编码",
    "编号",
    "序号",
    "year",
    "month",
    "day",
    "quarter",
    "code",
    "id",
    "_no",
    "rank",
)


def applies_to(file: OutputFile) -> bool:
    return file_kind(file) in (FileKind.csv, FileKind.xlsx)


def _classify(table: Table, spec: TableSpec) -> tuple[list[str], list[str], list[str], list[str]]:
    """(label columns, count columns, magnitude columns, other measure columns)."""
    labels: list[str] = []
    counts: list[str] = []
    mags: list[str] = []
    other: list[str] = []
    body = [r for r in table.rows if not any(is_total_label(v) for v in r)]
    for i, col in enumerate(table.header):
        values = [r[i] for r in body if not is_suppressed(r[i])]
        numbers = [parse_number(v) for v in values]
        numeric = bool(values) and all(n is not None for n in numbers)
        if col in spec.count_columns:
            counts.append(col)
        elif col in spec.magnitude_columns:
            mags.append(col)
        elif not numeric or any(h in col.lower() for h in _LABEL_HINTS):
            labels.append(col)
        elif all(n is not None and n >= 0 and float(n).is_integer() for n in numbers):
            counts.append(col)
        else:
            other.append(col)
    return labels, counts, mags, other


def _where(table: Table, row: int) -> str:
    sheet = f"“{table.sheet}”" if table.sheet else ""
    return f"{sheet}第 {table.lines[row]} 行"


def _where_en(table: Table, row: int) -> str:
    sheet = f"sheet {table.sheet!r} " if table.sheet else ""
    return f"{sheet}line {table.lines[row]}"


def _check_table(table: Table, spec: TableSpec, rules: SdcRules, found: Findings) -> None:
    labels, counts, mags, other = _classify(table, spec)
    missing = [c for c in (*spec.count_columns, *spec.magnitude_columns) if c not in table.header]
    if missing:
        found.add(
            CheckStatus.warn, f"申报的列不存在：{missing}", f"declared columns not in the table: {missing}"
        )
    cells: list[dict[str, object]] = found.details.setdefault("cells", [])
    small = zeros = 0
    for col in counts:
        i = table.header.index(col)
        for r, row in enumerate(table.rows):
            n = parse_number(row[i])
            if n is None:
                continue
            if n == 0:
                zeros += 1
            elif n < rules.min_units:
                small += 1
                if small <= MAX_LISTED:
                    cells.append(
                        {"line": table.lines[r], "sheet": table.sheet, "column": col, "rule": "threshold"}
                    )
                    found.add(
                        CheckStatus.fail,
                        f"{_where(table, r)}“{col}”列的计数小于 {rules.min_units}",
                        f"{_where_en(table, r)} column {col!r}: count below {rules.min_units}",
                    )
    if small > MAX_LISTED:
        found.add(
            CheckStatus.fail,
            f"另有 {small - MAX_LISTED} 个小计数单元格",
            f"{small - MAX_LISTED} more small cells",
        )
    if zeros:
        found.add(
            CheckStatus.warn,
            f"表中有 {zeros} 个零值单元格：请审核员确认其为结构性零值",
            f"{zeros} zero cells: the checker must confirm they are structural",
        )
    _check_magnitudes(table, spec, rules, mags, bool(counts), found)
    if other:
        found.add(
            CheckStatus.warn,
            f"无法判断的数值列 {other}：请申报为计数列或合计列，并附带计数",
            f"numeric columns {other} are neither declared counts nor sums: declare them and add counts",
        )
    if labels:
        for group in (counts, mags):
            for grid in build_grids(table, labels, group):
                for r, c in recoverable_cells(grid):
                    line, col = grid.where.get((r, c), (0, grid.col_labels[c]))
                    cell = f"{grid.row_labels[r]} × {grid.col_labels[c]}"
                    cells.append({"line": line, "sheet": table.sheet, "column": col, "rule": "recoverable"})
                    found.add(
                        CheckStatus.fail,
                        f"被隐藏的单元格（{cell}）可由合计反推：需要二次隐藏",
                        f"suppressed cell ({cell}) is recoverable from the totals: add secondary suppression",
                    )
                if group is counts:
                    for kind, label in structural_lines(grid):
                        found.add(
                            CheckStatus.fail,
                            f"结构性披露：{'行' if kind == 'row' else '列'}“{label}”除一个单元格外均为零",
                            f"structural disclosure: every cell but one of {kind} {label!r} is zero",
                        )
                        cells.append({"sheet": table.sheet, kind: label, "rule": "structural"})


def _check_magnitudes(
    table: Table, spec: TableSpec, rules: SdcRules, mags: list[str], has_counts: bool, found: Findings
) -> None:
    cells: list[dict[str, object]] = found.details["cells"]
    unchecked = 0
    for col in mags:
        i = table.header.index(col)
        for r, row in enumerate(table.rows):
            if is_suppressed(row[i]):
                continue
            contributions = spec.contributions.get((r, col))
            if contributions is None:
                unchecked += 1
                continue
            stats = cell_stats(contributions, keep=max(2, rules.nk_n))
            for reason in check_magnitude(stats, rules):
                cells.append({"line": table.lines[r], "sheet": table.sheet, "column": col, "rule": reason})
                found.add(
                    CheckStatus.fail,
                    f"{_where(table, r)}“{col}”列未通过 {reason} 规则",
                    f"{_where_en(table, r)} column {col!r} fails the {reason} rule",
                )
    if unchecked and not has_counts:
        found.add(
            CheckStatus.warn,
            "合计表必须附带每个单元格的计数（或贡献明细）：未能检查阈值和支配性",
            "a table of sums must come with its counts (or per-cell contributions): threshold and "
            "dominance not checked",
        )
    elif unchecked:
        found.add(
            CheckStatus.warn,
            f"{unchecked} 个合计单元格缺少贡献明细：未检查支配性规则",
            f"{unchecked} sum cells came without contributions: dominance not checked",
        )


def run(file: OutputFile, context: CheckContext) -> CheckResult:
    found = Findings(name)
    found.details["cells"] = []
    try:
        parsed = read_tables(file)
    except Exception:  # noqa: BLE001 - table_format reports why; this rule cannot run
        parsed = None
    if parsed is None or not parsed.tables:
        found.add(
            CheckStatus.warn, "表格无法解析，未做披露检查", "the table could not be parsed: not checked"
        )
        return found.result()
    spec = context.table_spec(file)
    for table in parsed.tables:
        _check_table(table, spec, context.sdc, found)
    return found.result()
