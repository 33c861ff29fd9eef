"""Rule (g): a suppressed cell must not be recoverable from the other tables of the request.

A village × age table suppresses a small cell and prints no totals; a second file of the same
request prints the village totals: subtracting gives the cell back.  Every table of the request
(declared or not) becomes a set of linear facts, per measure: "the sum of the finest cells
matching these group values is this number" (or unknown, where suppressed or left out).  A
suppressed fact whose indicator vector lies in the span of the known facts is determined by
them, whatever the numbers; it is reported when the facts of at least two files are needed
(one file alone is :mod:`.table_sdc`'s grid check).  A cell left out of a table is reported
when it is determined and its value is between 1 and the threshold.

Measures are matched by column name, and a table with a single measure also matches any other
single-measure table (tables of one request usually count one population: a renamed measure
must not hide a grand total); group columns by name, or by holding the same values.  Roles come
from the output library's sidecar, or, for other tables, from the values (text columns group,
number columns measure).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from countylab.airlock.checks.base import (
    CheckContext,
    CheckResult,
    CheckStatus,
    FileKind,
    Findings,
    OutputFile,
)
from countylab.airlock.checks.declared import Declared
from countylab.airlock.checks.grid import is_suppressed, is_total_label, parse_number
from countylab.airlock.checks.library import library_table
from countylab.airlock.checks.sniff import file_kind
from countylab.airlock.checks.tables import Table, read_tables

name = "recovery"
MAX_ATOMS = 20_000
_TOL = 1e-8


@dataclass(frozen=True)
class Fact:
    file: str
    line: int
    column: str
    where: tuple[tuple[str, str], ...]  # (group column, value); a missing column means "all"
    value: float | None  # None: suppressed or left out
    omitted: bool = False


def _roles(file: OutputFile, table: Table, context: CheckContext) -> tuple[list[str], list[str]]:
    verdict = library_table(file, context)
    if isinstance(verdict, Declared):
        if verdict.kind not in ("crosstab", "pivot_table"):
            return [], []  # counts of a regression or a description are not a breakdown of units
        return list(verdict.group_columns), [*verdict.count_columns, *verdict.magnitude_columns]
    groups: list[str] = []
    measures: list[str] = []
    for i, col in enumerate(table.header):
        values = [r[i] for r in table.rows if not is_suppressed(r[i]) and not is_total_label(r[i])]
        (measures if values and all(parse_number(v) is not None for v in values) else groups).append(col)
    return groups, measures


def _facts(file: OutputFile, table: Table, context: CheckContext) -> dict[str, list[Fact]]:
    groups, measures = _roles(file, table, context)
    measures = [m for m in measures if not is_total_label(m)]
    out: dict[str, list[Fact]] = defaultdict(list)
    if not groups or not measures:
        return out
    gi = [table.header.index(g) for g in groups]
    seen: dict[str, set[tuple[tuple[str, str], ...]]] = defaultdict(set)
    for row, line in zip(table.rows, table.lines, strict=True):
        where = tuple((g, row[i]) for g, i in zip(groups, gi, strict=True) if not is_total_label(row[i]))
        for m in measures:
            cell = row[table.header.index(m)]
            value = None if is_suppressed(cell) else parse_number(cell)
            if value is None and not is_suppressed(cell):
                continue
            fact = Fact(file.name, line, m, where, value)
            out[m].append(fact)
            seen[m].add(where)
    for m in measures:  # finest cells the table left out (every group value seen, combination not)
        values = [sorted({w[k][1] for w in seen[m] if len(w) == len(groups)}) for k in range(len(groups))]
        for combo in itertools.product(*values):
            where = tuple(zip(groups, combo, strict=True))
            if where not in seen[m] and len(groups) > 1:
                out[m].append(Fact(file.name, 0, m, where, None, omitted=True))
    if len(measures) == 1:
        out["*"] = list(out[measures[0]])
    return out


def _matrix(facts: Sequence[Fact]) -> np.ndarray | None:
    dims = sorted({g for f in facts for g, _ in f.where})
    values = {d: sorted({v for f in facts for g, v in f.where if g == d}) for d in dims}
    size = int(np.prod([len(values[d]) for d in dims])) if dims else 1
    if size > MAX_ATOMS:
        return None
    index = {combo: i for i, combo in enumerate(itertools.product(*(values[d] for d in dims)))}
    rows = np.zeros((len(facts), size))
    for r, f in enumerate(facts):
        want = dict(f.where)
        for combo, i in index.items():
            if all(want.get(d, v) == v for d, v in zip(dims, combo, strict=True)):
                rows[r, i] = 1.0
    return rows


def _determined(known: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Which target rows lie in the row space of ``known``."""
    if known.shape[0] == 0:
        return np.zeros(targets.shape[0], dtype=bool)
    _u, s, vt = np.linalg.svd(known, full_matrices=False)
    basis = vt[s > _TOL * max(1.0, float(s[0]))]
    residual = targets - (targets @ basis.T) @ basis
    return np.asarray(np.linalg.norm(residual, axis=1) < 1e-6)


def _recoveries(facts: list[Fact], min_units: int) -> list[tuple[Fact, str]]:
    files = {f.file for f in facts}
    if len(files) < 2 or not any(f.value is None for f in facts):
        return []
    matrix = _matrix(facts)
    if matrix is None:
        return []
    known_idx = [i for i, f in enumerate(facts) if f.value is not None]
    unknown_idx = [i for i, f in enumerate(facts) if f.value is None]
    known = matrix[known_idx]
    hit = _determined(known, matrix[unknown_idx])
    solution = np.linalg.lstsq(known, np.array([facts[i].value for i in known_idx], dtype=float), rcond=None)[
        0
    ]
    found: list[tuple[Fact, str]] = []
    for i, determined in zip(unknown_idx, hit.tolist(), strict=True):
        fact = facts[i]
        if not determined:
            continue
        own = [k for k in known_idx if facts[k].file == fact.file]
        if _determined(matrix[own], matrix[[i]])[0]:
            continue  # one file alone gives it away: the table check reports that
        value = float(matrix[i] @ solution)
        if fact.omitted and not 0.5 <= value < min_units:
            continue
        others = sorted(files - {fact.file})
        found.append((fact, ", ".join(others)))
    return found


def _canonical(facts: list[Fact]) -> list[Fact]:
    """Group columns of different files that hold the same values are one dimension, whatever
    their names (``village`` in one file, ``村`` in another): renaming a column hides nothing."""
    values: dict[tuple[str, str], set[str]] = defaultdict(set)
    for f in facts:
        for g, v in f.where:
            values[(f.file, g)].add(v)
    canon: dict[tuple[str, str], str] = {}
    reps: list[tuple[str, set[str]]] = []
    for (file, g), vals in sorted(values.items()):
        for rep, rep_vals in reps:
            if len(vals) >= 2 and len(vals & rep_vals) >= 0.8 * len(vals | rep_vals):
                canon[(file, g)] = rep
                rep_vals |= vals
                break
        else:
            same_name = next((r for r, _ in reps if r == g), None)
            canon[(file, g)] = same_name or g
            if same_name is None:
                reps.append((g, set(vals)))
    return [
        Fact(f.file, f.line, f.column, tuple((canon[(f.file, g)], v) for g, v in f.where), f.value, f.omitted)
        for f in facts
    ]


def cross_table(files: Sequence[OutputFile], context: CheckContext) -> dict[str, CheckResult]:
    """Findings per file name (only files with a recoverable cell are listed)."""
    groups: dict[str, list[Fact]] = defaultdict(list)
    for file in files:
        if file_kind(file) not in (FileKind.csv, FileKind.xlsx):
            continue
        try:
            parsed = read_tables(file)
        except Exception:  # noqa: BLE001, S112 - table_format reports why
            continue
        for table in parsed.tables if parsed else []:
            for measure, facts in _facts(file, table, context).items():
                groups[measure] += facts
    groups = {m: _canonical(facts) for m, facts in groups.items()}
    results: dict[str, Findings] = {}
    reported: set[tuple[str, int, str, tuple[tuple[str, str], ...]]] = set()
    for facts in groups.values():
        for fact, others in _recoveries(facts, context.sdc.min_units):
            key = (fact.file, fact.line, fact.column, fact.where)
            if key in reported:
                continue
            reported.add(key)
            found = results.setdefault(fact.file, Findings(name))
            found.details.setdefault("cells", []).append(
                {
                    "line": fact.line or None,
                    "column": fact.column,
                    "rule": "recoverable_across_files",
                    "from": others,
                }
            )
            what_zh = (
                "未列出的单元格" if fact.omitted else f"第 {fact.line} 行“{fact.column}”列被隐藏的单元格"
            )
            what_en = (
                "a cell left out"
                if fact.omitted
                else f"the suppressed cell at line {fact.line}, column {fact.column!r}"
            )
            found.add(
                CheckStatus.fail,
                f"{what_zh}可由同一申请中另一文件（{others}）的合计反推",
                f"{what_en} can be recovered from totals in another file of this request ({others})",
            )
    return {file: f.result() for file, f in results.items()}
