"""Rule (b): tables must parse strictly; workbooks must hold plain visible values only.

Hidden sheets, formulas, external links and macros all mean the released file could show
(or fetch, or compute) something the checker did not see, so each fails.
"""

from __future__ import annotations

from countylab.airlock.checks.base import (
    CheckContext,
    CheckResult,
    CheckStatus,
    FileKind,
    Findings,
    OutputFile,
)
from countylab.airlock.checks.sniff import file_kind
from countylab.airlock.checks.tables import read_tables

name = "table_format"


def applies_to(file: OutputFile) -> bool:
    return file_kind(file) in (FileKind.csv, FileKind.xlsx)


def run(file: OutputFile, context: CheckContext) -> CheckResult:
    found = Findings(name)
    try:
        parsed = read_tables(file)
    except Exception as exc:  # noqa: BLE001 - a workbook openpyxl cannot read is a failed check
        found.add(CheckStatus.fail, f"无法解析表格：{type(exc).__name__}", f"cannot parse the table: {exc}")
        found.details["reason"] = "unreadable"
        return found.result()
    assert parsed is not None  # applies_to() admitted only tables
    for p in parsed.problems:
        found.add(CheckStatus.fail, p.message_zh, p.message_en)
    found.details["problems"] = [
        {"reason": p.reason, "line": p.line, "sheet": p.sheet, "cell": p.cell} for p in parsed.problems
    ]
    found.details["tables"] = [
        {"sheet": t.sheet, "columns": len(t.header), "rows": len(t.rows)} for t in parsed.tables
    ]
    return found.result()
