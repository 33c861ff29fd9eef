"""Rule (c): ACRO-like disclosure rules on output tables.

Roles (group keys, counts, sums, other statistics) come only from the output library's
verified sidecar (:mod:`.declared`), never from column names.  A table without one is
free-form (:mod:`.library`): a person reads it, and only the stricter checks below run.

* threshold: every count cell and every cell's number of units is 0 or ≥ ``min_units``
  (for a free-form table: the count columns the developer named);
* p% and (n, k) dominance on sum cells, from the contributions the library recorded;
* regressions: residual degrees of freedom ≥ ``min_units``;
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
from countylab.airlock.checks.declared import Declared
from countylab.airlock.checks.grid import (
    build_grids,
    is_suppressed,
    is_total_label,
    parse_number,
    recoverable_cells,
    structural_lines,
)
from countylab.airlock.checks.library import library_table
from countylab.airlock.checks.sniff import file_kind
from countylab.airlock.checks.tables import MAX_LISTED, Table, read_tables
from countylab.privacy.sdc import SdcRules, cell_stats, check_magnitude

name = "table_sdc"


def applies_to(file: OutputFile) -> bool:
    return file_kind(file) in (FileKind.csv, FileKind.xlsx)


def _roles(
    table: Table, spec: TableSpec, declared: Declared | None
) -> tuple[list[str], list[str], list[str]]:
    """(label columns, count columns, magnitude columns).

    From the output library's verified declaration when there is one.  A free-form table has
    no roles: only the count columns the developer named are threshold-checked (that can only
    add failures), and for recoverability the columns holding any non-number are labels and
    the all-number ones measures (a structural reading, never a name)."""
    if declared is not None:
        counts = [c for c in declared.count_columns if c not in declared.group_columns]
        return list(declared.group_columns), counts, list(declared.magnitude_columns)
    labels: list[str] = []
    measures: list[str] = []
    body = [r for r in table.rows if not any(is_total_label(v) for v in r)]
    for i, col in enumerate(table.header):
        values = [r[i] for r in body if not is_suppressed(r[i])]
        numeric = bool(values) and all(parse_number(v) is not None for v in values)
        (measures if numeric else labels).append(col)
    return (
        labels,
        [c for c in measures if c in spec.count_columns or c not in spec.magnitude_columns],
        [c for c in measures if c in spec.magnitude_columns],
    )


def _where(table: Table, row: int) -> str:
    sheet = f"“{table.sheet}”" if table.sheet else ""
    return f"{sheet}第 {table.lines[row]} 行"


def _where_en(table: Table, row: int) -> str:
    sheet = f"sheet {table.sheet!r} " if table.sheet else ""
    return f"{sheet}line {table.lines[row]}"


_RULE_WORDS = {  # the rule by name in the check's own message (the page shows the same words)
    "p_percent": ("p% 规则（单个贡献者可被估计）", "the p% rule (one contributor can be estimated)"),
    "nk_dominance": (
        "n-k 优势规则（少数贡献者占比过高）",
        "the n-k dominance rule (a few contributors dominate)",
    ),
}


def _rule_words(reason: str) -> tuple[str, str]:
    zh, en = _RULE_WORDS.get(reason, (f"{reason} 规则", f"the {reason} rule"))
    return f"未通过{zh}", f"fails {en}"


def _flag(found: Findings, table: Table, r: int, col: str, rule: str, zh: str, en: str) -> None:
    found.details["cells"].append({"line": table.lines[r], "sheet": table.sheet, "column": col, "rule": rule})
    found.add(
        CheckStatus.fail, f"{_where(table, r)}“{col}”列{zh}", f"{_where_en(table, r)} column {col!r}: {en}"
    )


def _thresholds(
    table: Table, columns: list[str], declared: Declared | None, rules: SdcRules, found: Findings
) -> int:
    """Flag count cells, and (for a library table) every statistic cell whose units are below
    the threshold; return the number of zero count cells."""
    small = zeros = 0
    for r, row in enumerate(table.rows):
        for i, col in enumerate(table.header):
            if col in columns:
                n = parse_number(row[i])
                if n == 0:
                    zeros += 1
                    continue
            elif declared is not None and (r, col) in declared.units and row[i].strip():
                n = declared.units[(r, col)]
            else:
                continue
            if n is not None and n < rules.min_units:
                small += 1
                if small <= MAX_LISTED:
                    zh, en = f"的计数小于 {rules.min_units}", f"count below {rules.min_units}"
                    _flag(found, table, r, col, "threshold", zh, en)
    if small > MAX_LISTED:
        found.add(
            CheckStatus.fail,
            f"另有 {small - MAX_LISTED} 个小计数单元格",
            f"{small - MAX_LISTED} more small cells",
        )
    return zeros


def _check_table(
    table: Table, spec: TableSpec, declared: Declared | None, rules: SdcRules, found: Findings
) -> None:
    labels, counts, mags = _roles(table, spec, declared)
    missing = [c for c in (*spec.count_columns, *spec.magnitude_columns) if c not in table.header]
    if missing:
        found.add(
            CheckStatus.warn, f"申报的列不存在：{missing}", f"declared columns not in the table: {missing}"
        )
    checked = counts if declared is not None else [c for c in spec.count_columns if c in table.header]
    zeros = _thresholds(table, checked, declared, rules, found)
    if zeros:
        found.add(
            CheckStatus.warn,
            f"表中有 {zeros} 个零值单元格：请审核员确认其为结构性零值",
            f"{zeros} zero cells: the checker must confirm they are structural",
        )
    if declared is not None:
        _check_magnitudes(table, declared, rules, found)
        if (
            declared.kind in ("regression", "model_summary")
            and declared.n_obs - len(table.rows) < rules.min_units
        ):
            found.details["cells"].append({"sheet": table.sheet, "rule": "degrees_of_freedom"})
            found.add(
                CheckStatus.fail,
                f"回归的剩余自由度小于 {rules.min_units}",
                f"the regression's residual degrees of freedom are below {rules.min_units}",
            )
    elif spec.magnitude_columns and spec.contributions:
        _check_contributions(table, spec, rules, found)
    if labels:
        _check_grids(table, labels, counts, mags, declared is not None, found)


def _check_grids(
    table: Table, labels: list[str], counts: list[str], mags: list[str], structural: bool, found: Findings
) -> None:
    cells: list[dict[str, object]] = found.details["cells"]
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
            if group is counts and structural:
                for kind, label in structural_lines(grid):
                    found.add(
                        CheckStatus.fail,
                        f"结构性披露：{'行' if kind == 'row' else '列'}“{label}”除一个单元格外均为零",
                        f"structural disclosure: every cell but one of {kind} {label!r} is zero",
                    )
                    cells.append({"sheet": table.sheet, kind: label, "rule": "structural"})


def _check_magnitudes(table: Table, declared: Declared, rules: SdcRules, found: Findings) -> None:
    for (r, col), stats in sorted(declared.magnitudes.items()):
        for reason in check_magnitude(stats, rules):
            if reason != "threshold":  # thresholds were checked with every cell
                _flag(found, table, r, col, reason, *_rule_words(reason))


def _check_contributions(table: Table, spec: TableSpec, rules: SdcRules, found: Findings) -> None:
    """Contributions handed in directly (tests, the SDC gateway): stricter only."""
    for col in spec.magnitude_columns:
        if col not in table.header:
            continue
        for r in range(len(table.rows)):
            contributions = spec.contributions.get((r, col))
            if contributions is None:
                continue
            for reason in check_magnitude(cell_stats(contributions, keep=max(2, rules.nk_n)), rules):
                _flag(found, table, r, col, reason, *_rule_words(reason))


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
    verdict = library_table(file, context)
    declared = verdict if isinstance(verdict, Declared) else None
    found.details["declared"] = declared is not None
    for table in parsed.tables:
        _check_table(table, spec, declared, context.sdc, found)
    return found.result()
