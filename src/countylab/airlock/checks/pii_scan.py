"""Identifiers in outputs, by the catalog's own detectors (:func:`countylab.catalog.pii.match_kinds`).

ID numbers, bank cards, mobiles and USCCs (checksummed or strictly formatted) fail; names,
addresses and plates are pattern guesses and warn.  Works without any source index, so it
also catches identifiers of people outside the granted datasets.  SVG and PNG text is scanned
by the images check.
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
from countylab.airlock.checks.scan import pii_in_cells, pii_in_text, report_pii
from countylab.airlock.checks.sniff import file_kind, sniff_file
from countylab.airlock.checks.tables import read_tables

name = "pii_scan"


def applies_to(file: OutputFile) -> bool:
    return file_kind(file) in (FileKind.csv, FileKind.xlsx, FileKind.text, FileKind.json)


def run(file: OutputFile, context: CheckContext) -> CheckResult:
    found = Findings(name)
    if file_kind(file) in (FileKind.csv, FileKind.xlsx):
        try:
            parsed = read_tables(file)
        except Exception:  # noqa: BLE001 - table_format reports why
            parsed = None
        if parsed is None:
            found.add(
                CheckStatus.warn,
                "表格无法解析，未做个人信息扫描",
                "the table could not be parsed: not scanned",
            )
            return found.result()
        for t in parsed.tables:
            report_pii(pii_in_cells(t.header, t.rows, t.lines), found)
            report_pii(pii_in_cells(t.header, [t.header], [1]), found, "表头中", "in the header: ")
    else:
        report_pii(pii_in_text(sniff_file(file).text or ""), found)
    return found.result()
