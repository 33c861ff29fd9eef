"""Shared scanning of output values for identifiers (match_kinds) and source leakage.

Used by :mod:`.leakage_scan`, :mod:`.pii_scan` and :mod:`.images`, so a table cell, a log line,
an SVG label and OCR'd text from a chart are judged by the same rules.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Set
from dataclasses import dataclass

from countylab.airlock.checks.base import CheckStatus, Findings
from countylab.airlock.leakage import LeakageReport, SourceIndex, scan_table, scan_text
from countylab.airlock.normalise import (
    identifier_forms,
    skeleton,
    split_identifiers,
    strip_format,
    value_forms,
)
from countylab.catalog.pii import PiiKind, match_kinds

# Identifiers with a check digit (or a strict format) are certain; names, addresses and plates
# are guesses from patterns, so they ask a checker to look rather than block.
CERTAIN_KINDS = frozenset({PiiKind.id_number, PiiKind.bank_card, PiiKind.mobile, PiiKind.uscc})
DOUBTFUL = "row-statistics"  # a mobile only when fractional statistics are read as digits
_TOKEN_SPLIT = re.compile(r"[\s,;:|，。；：、（）()\[\]{}\"'<>=/\\]+")


@dataclass(frozen=True)
class PiiHit:
    line: int
    column: str
    kinds: frozenset[PiiKind]


_DIGIT = re.compile(r"[0-9]")
_IDENTIFIER_KINDS = frozenset({PiiKind.id_number, PiiKind.mobile, PiiKind.bank_card})


def _window_kinds(candidates: Set[str]) -> set[PiiKind]:
    """An 18-character window counts as an ID number only, an 11-digit one as a mobile only
    (windows of other lengths, or read as bank cards by chance, are not identifiers here)."""
    kinds: set[PiiKind] = set()
    for c in candidates:
        want = PiiKind.id_number if len(c) == 18 else PiiKind.mobile if len(c) == 11 else None
        if want is not None and want in match_kinds(c):
            kinds.add(want)
    return kinds


@functools.lru_cache(maxsize=65_536)  # tables repeat their values
def _kinds(value: str) -> frozenset[PiiKind]:
    """Kinds in one value: the value itself and its normalised forms (format characters
    dropped, NFKC, confusable skeleton), and identifiers hidden inside it (see
    :mod:`countylab.airlock.normalise`)."""
    kinds: set[PiiKind] = set(match_kinds(value))
    for form in value_forms(value):
        kinds |= match_kinds(form)
    kinds |= _window_kinds(identifier_forms(value))
    return frozenset(kinds)


def pii_in_cells(header: tuple[str, ...], rows: list[tuple[str, ...]], lines: list[int]) -> list[PiiHit]:
    hits: list[PiiHit] = []
    for row, line in zip(rows, lines, strict=True):
        found_in_cells: set[PiiKind] = set()
        for col, value in zip(header, row, strict=True):
            kinds = _kinds(value)
            if kinds:
                hits.append(PiiHit(line, col, kinds))
                found_in_cells |= kinds
        split: set[PiiKind] = set()  # an identifier split across adjacent cells
        split |= _window_kinds(split_identifiers(row))
        if split - found_in_cells:
            hits.append(PiiHit(line, "row", frozenset(split - found_in_cells)))
        doubtful = _window_kinds(split_identifiers(row, statistics=True)) - split - found_in_cells
        if doubtful:  # digits of statistics that line up like a mobile: a person looks
            hits.append(PiiHit(line, DOUBTFUL, frozenset(doubtful)))
    return hits


def pii_in_text(text: str) -> list[PiiHit]:
    """Identifiers in free text, token by token, in every normalised form, and identifiers
    hidden anywhere in a line (glued to a prefix, split by separators, spelled in letters)."""
    hits: list[PiiHit] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        kinds: set[PiiKind] = set()
        tokens = _TOKEN_SPLIT.split(line)
        if not line.isascii():
            tokens += _TOKEN_SPLIT.split(strip_format(line))
        known = {t.lower() for t in tokens}
        # skeleton tokens that differ and hold a digit (look-alikes of ID numbers and phones)
        tokens += [t for t in _TOKEN_SPLIT.split(skeleton(line)) if t not in known and _DIGIT.search(t)]
        for token in dict.fromkeys(tokens):
            kinds |= match_kinds(token)
        kinds |= _window_kinds(identifier_forms(line))
        if kinds:
            hits.append(PiiHit(line_no, "text", frozenset(kinds)))
    return hits


def report_pii(hits: list[PiiHit], found: Findings, where_zh: str = "", where_en: str = "") -> None:
    counts: Counter[str] = Counter(k.value for h in hits for k in h.kinds)
    found.details.setdefault("pii", []).extend(
        {"line": h.line, "column": h.column, "kinds": sorted(k.value for k in h.kinds)} for h in hits[:50]
    )
    if not hits:
        return
    certain = any(h.kinds & CERTAIN_KINDS and h.column != DOUBTFUL for h in hits)
    summary = "、".join(f"{k} {n} 处" for k, n in sorted(counts.items()))
    summary_en = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()))
    found.add(
        CheckStatus.fail if certain else CheckStatus.warn,
        f"{where_zh}发现疑似个人信息（{summary}）",
        f"{where_en}values that look like personal information ({summary_en})",
    )


def report_leakage(report: LeakageReport, found: Findings, where_zh: str = "", where_en: str = "") -> None:
    exact = report.exact_matches
    partial = len(report.cell_matches) - len(exact)
    found.details.setdefault("leakage", []).append(
        {
            "cells_scanned": report.cells_scanned,
            "rows_scanned": report.rows_scanned,
            "cell_matches": [
                {"line": m.line, "column": m.column, "source_column": m.source_column, "partial": m.partial}
                for m in report.cell_matches[:100]
            ],
            "cell_match_count": len(report.cell_matches),
            "row_matches": list(report.row_matches[:100]),
            "row_match_count": len(report.row_matches),
        }
    )
    if exact:
        by_source = Counter(m.source_column for m in exact)
        listed = ", ".join(f"{c}: {n}" for c, n in sorted(by_source.items()))
        found.add(
            CheckStatus.fail,
            f"{where_zh}有 {len(exact)} 个值与源数据的标识列完全相同（{listed}）",
            f"{where_en}{len(exact)} values equal values of source identifier columns ({listed})",
        )
    if report.row_matches:
        found.add(
            CheckStatus.fail,
            f"{where_zh}有 {len(report.row_matches)} 行与源数据的敏感列明细行完全相同",
            f"{where_en}{len(report.row_matches)} rows equal source rows on the sensitive columns",
        )
    if partial:
        found.add(
            CheckStatus.warn,
            f"{where_zh}有 {partial} 处文字片段与源数据的标识值相同（可能是姓名）",
            f"{where_en}{partial} pieces of text equal source identifier values (possibly names)",
        )


def leakage_of_text(text: str, index: SourceIndex | None, found: Findings) -> None:
    if index is None:
        warn_no_index(found)
        return
    report_leakage(scan_text(text, index), found)


def leakage_of_cells(
    header: tuple[str, ...],
    rows: list[tuple[str, ...]],
    lines: list[int],
    index: SourceIndex,
    found: Findings,
    where_zh: str = "",
    where_en: str = "",
) -> None:
    report_leakage(scan_table(header, rows, lines, index), found, where_zh, where_en)


def warn_no_index(found: Findings) -> None:
    found.add(
        CheckStatus.warn,
        "未提供源数据索引：未做明细泄露扫描",
        "no source index was supplied: the row-level leakage scan did not run",
    )
