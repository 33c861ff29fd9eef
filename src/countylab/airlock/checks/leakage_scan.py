"""Rule (d): output values compared with the granted source datasets (see :mod:`..leakage`).

Tables are scanned cell by cell and row by row; text, JSON and SVG labels token by token.
PNG text is scanned by the images check after OCR.  Without a source index the check warns:
a release is never silently assumed clean.
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
from countylab.airlock.checks.scan import leakage_of_cells, leakage_of_text, warn_no_index
from countylab.airlock.checks.sniff import file_kind, sniff_file
from countylab.airlock.checks.svg import inspect_svg
from countylab.airlock.checks.tables import read_tables

name = "leakage_scan"

_KINDS = (FileKind.csv, FileKind.xlsx, FileKind.text, FileKind.json, FileKind.svg)


def applies_to(file: OutputFile) -> bool:
    return file_kind(file) in _KINDS


def run(file: OutputFile, context: CheckContext) -> CheckResult:
    found = Findings(name)
    index = context.source_index
    if index is None:
        warn_no_index(found)
        return found.result()
    kind = file_kind(file)
    if kind in (FileKind.csv, FileKind.xlsx):
        try:
            parsed = read_tables(file)
        except Exception:  # noqa: BLE001 - table_format reports why
            parsed = None
        if parsed is None:
            found.add(
                CheckStatus.warn, "表格无法解析，未做泄露扫描", "the table could not be parsed: not scanned"
            )
            return found.result()
        for t in parsed.tables:
            zh = f"工作表“{t.sheet}”中" if t.sheet else ""
            en = f"sheet {t.sheet!r}: " if t.sheet else ""
            leakage_of_cells(t.header, t.rows, t.lines, index, found, zh, en)
    elif kind is FileKind.svg:
        leakage_of_text(inspect_svg(sniff_file(file).text or "").text, index, found)
    else:
        leakage_of_text(sniff_file(file).text or "", index, found)
    return found.result()
