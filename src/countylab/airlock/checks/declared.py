"""Verify an output library sidecar against the output it describes.

The sidecar (:mod:`countylab.output.sidecar`) is written by the job, so it is a claim.  It is
accepted only when it fits the file exactly: the file's SHA-256, the same columns with one
role each, the same rows with the same group keys, count cells that are non-negative
integers equal to the printed ones, statistic cells whose units do not exceed their row's
count, contributions that are sorted, non-negative and add up, and margins that add up.
Anything else makes the file free-form (a person reads it whole).  Roles come only from here:
never from column names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from countylab.airlock.checks.grid import is_total_label, parse_number
from countylab.airlock.checks.tables import Table
from countylab.output.sidecar import FORMAT, sha256
from countylab.privacy.sdc import CellStats

TABLE_KINDS = ("crosstab", "pivot_table", "describe", "regression", "model_summary")
_EPS = 1e-6


@dataclass(frozen=True)
class Declared:
    """Roles and per-cell contributors of a library table, after verification."""

    kind: str
    group_columns: tuple[str, ...]
    count_columns: tuple[str, ...]
    magnitude_columns: tuple[str, ...]
    statistic_columns: tuple[str, ...]
    units: Mapping[tuple[int, str], int] = field(default_factory=dict)  # (data row, column) → n
    magnitudes: Mapping[tuple[int, str], CellStats] = field(default_factory=dict)
    total_rows: frozenset[int] = frozenset()
    n_obs: int = 0


@dataclass(frozen=True)
class Rejected:
    """Why a sidecar was not accepted (machine word + bilingual message, no cell values)."""

    reason: str
    zh: str
    en: str


def load(raw: bytes | None) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"format": "unreadable"}
    return value if isinstance(value, dict) else {"format": "unreadable"}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _names(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(value)


def check_header(sidecar: Mapping[str, Any], data: bytes, kinds: tuple[str, ...]) -> Rejected | None:
    if sidecar.get("format") != FORMAT or sidecar.get("kind") not in kinds:
        return Rejected("format", "元数据格式或类型不符", "metadata format or kind does not fit this file")
    if sidecar.get("sha256") != sha256(data):
        return Rejected(
            "sha256", "元数据与文件内容不符（哈希不同）", "the metadata describes other content (hash)"
        )
    return None


def verify_table(table: Table, data: bytes, sidecar: Mapping[str, Any]) -> Declared | Rejected:
    bad = check_header(sidecar, data, TABLE_KINDS)
    if bad is not None:
        return bad
    roles = [
        _names(sidecar.get(k, []))
        for k in ("group_columns", "count_columns", "magnitude_columns", "statistic_columns")
    ]
    if any(r is None for r in roles):
        return Rejected("columns", "元数据的列角色无法读取", "the metadata's column roles are unreadable")
    groups, counts, mags, stats = (r or () for r in roles)
    every = [*groups, *counts, *mags, *stats]
    if sorted(every) != sorted(table.header) or len(set(table.header)) != len(table.header) or not counts:
        return Rejected(
            "columns", "元数据的列角色与表头不符", "the metadata's column roles do not match the header"
        )
    rows = sidecar.get("rows")
    if not isinstance(rows, list) or len(rows) != len(table.rows):
        return Rejected("rows", "元数据的行数与表格不符", "the metadata has another number of rows")
    gi = [table.header.index(g) for g in groups]
    units: dict[tuple[int, str], int] = {}
    magnitudes: dict[tuple[int, str], CellStats] = {}
    totals: set[int] = set()
    for r, (row, meta) in enumerate(zip(table.rows, rows, strict=True)):
        if not isinstance(meta, dict) or meta.get("key") != [row[i] for i in gi]:
            return Rejected(
                "keys", "元数据的分组键与表格不符", "the metadata's group keys do not match the table"
            )
        if any(is_total_label(row[i]) for i in gi):
            totals.add(r)
        cells = meta.get("cells")
        if not isinstance(cells, dict) or sorted(cells) != sorted([*counts, *mags, *stats]):
            return Rejected("cells", "元数据缺少单元格", "the metadata does not describe every cell")
        row_counts: list[int] = []
        for col in counts:
            n = _int((cells[col] or {}).get("n")) if isinstance(cells[col], dict) else None
            printed = parse_number(row[table.header.index(col)])
            if n is None or printed is None or printed != n:
                return Rejected(
                    "counts",
                    "计数列不是与元数据一致的非负整数",
                    "a count cell is not the non-negative integer declared",
                )
            units[(r, col)] = n
            row_counts.append(n)
        for col in (*mags, *stats):
            entry = cells[col]
            n = _int(entry.get("n")) if isinstance(entry, dict) else None
            if n is None or n > max(row_counts):
                return Rejected(
                    "units",
                    "统计单元格的个体数超过该行计数",
                    "a statistic cell claims more units than its row counts",
                )
            units[(r, col)] = n
            if col in mags:
                stats_or_bad = _magnitude(entry, n, row[table.header.index(col)])
                if isinstance(stats_or_bad, Rejected):
                    return stats_or_bad
                magnitudes[(r, col)] = stats_or_bad
    bad = _margins(table, groups, counts, totals, sidecar.get("kind") == "crosstab")
    if bad is not None:
        return bad
    n_obs = _int(sidecar.get("n_obs"))
    if n_obs is None:
        return Rejected("n_obs", "元数据缺少观测数", "the metadata lacks the number of observations")
    return Declared(
        str(sidecar["kind"]), groups, counts, mags, stats, units, magnitudes, frozenset(totals), n_obs
    )


def _magnitude(entry: Mapping[str, Any], n: int, printed: str) -> CellStats | Rejected:
    top, total = entry.get("top"), entry.get("total")
    wrong = Rejected(
        "contributions", "合计单元格的贡献明细不自洽", "a sum cell's contributions are inconsistent"
    )
    if not isinstance(top, list) or not isinstance(total, int | float) or isinstance(total, bool):
        return wrong
    if not all(
        isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) and t >= 0 for t in top
    ):
        return wrong
    if top != sorted(top, reverse=True) or len(top) > n or len(top) < min(n, 2):
        return wrong
    value = parse_number(printed)
    if not math.isfinite(total) or sum(top) > total * (1 + _EPS) + _EPS:
        return wrong
    if value is not None and abs(value) > total * (1 + 1e-4) + 1e-3:  # Σ|x| ≥ |Σx| (printing rounds)
        return wrong
    if n > len(top) and len(top) and total - sum(top) > (n - len(top)) * top[-1] * (1 + _EPS) + _EPS:
        return wrong  # the units not listed are each no larger than the smallest listed one
    return CellStats(n, float(total), tuple(float(t) for t in top))


def _margins(
    table: Table, groups: tuple[str, ...], counts: tuple[str, ...], totals: set[int], crosstab: bool
) -> Rejected | None:
    wrong = Rejected("margins", "合计与各单元格之和不符", "the margins do not add up")
    body = [r for r in range(len(table.rows)) if r not in totals]
    for r in totals:
        for col in counts:
            i = table.header.index(col)
            if sum(parse_number(table.rows[b][i]) or 0 for b in body) != parse_number(table.rows[r][i]):
                return wrong
    if crosstab:
        margin = [c for c in counts if is_total_label(c)]
        cats = [c for c in counts if not is_total_label(c)]
        for row in table.rows:
            if margin and sum(parse_number(row[table.header.index(c)]) or 0 for c in cats) != parse_number(
                row[table.header.index(margin[0])]
            ):
                return wrong
    return None
