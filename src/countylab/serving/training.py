"""Read a sample of a model's training data for the memorisation tests (:mod:`.assess`).

Runs in the lab's own process on the warehouse's Parquet files (trusted code, real data); what
it reads never leaves: the rows go only to the model's sandboxed worker, and the report keeps
figures, not rows.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from countylab.serving.assess import SAMPLE_ROWS, TrainingSample, fresh_seed

RARE_VALUES_MAX = 200_000
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "UBIGINT")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _files(paths: Sequence[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def load_sample(
    sources: Sequence[tuple[str, int | None, list[Path]]],
    inputs: Sequence[str],
    target: str | None,
    seed: int | None = None,
) -> TrainingSample | None:
    """A sample of the first training dataset holding every input (and the target), drawn
    with a fresh seed unless one is given (see :func:`countylab.serving.assess.fresh_seed`)."""
    seed = int(fresh_seed() if seed is None else seed)
    wanted = [*inputs, *([target] if target else [])]
    for name, version, paths in sources:
        files = [p for p in paths if p.exists()]
        if not files:
            continue
        con = duckdb.connect(":memory:", config={"autoload_known_extensions": False})
        try:
            src = f"read_parquet({_files(files)}, union_by_name = true)"
            described = con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
            types = {str(r[0]): str(r[1]) for r in described}
            if not all(c in types for c in wanted):
                continue
            cols = ", ".join(_q(c) for c in wanted)
            rows = con.execute(
                f"SELECT {cols} FROM {src} USING SAMPLE reservoir({SAMPLE_ROWS} ROWS) REPEATABLE ({seed})"
            ).fetchall()
            rare: Counter[float] = Counter()
            for col, typ in types.items():
                if not typ.startswith(_NUMERIC):
                    continue
                found = con.execute(
                    f"SELECT CAST({_q(col)} AS DOUBLE) AS v, count(*) FROM {src} "
                    f"WHERE {_q(col)} IS NOT NULL GROUP BY v HAVING count(*) <= 2 LIMIT {RARE_VALUES_MAX}"
                ).fetchall()
                for value, n in found:
                    rare[round(float(value), 6)] += int(n)
            return TrainingSample(name, version, tuple(wanted), [tuple(r) for r in rows], rare)
        finally:
            con.close()
    return None


MAX_LEVELS = 200  # a text input with more distinct values is not a category (left open)


def _outward(lower: float, upper: float) -> tuple[float, float]:
    """Bounds widened to a coarse grid, so a refusal never tells the exact extreme of a column
    (the oldest resident's age, the highest income) to a caller probing the boundary."""
    span = max(upper - lower, 1.0)
    step = 10.0 ** math.floor(math.log10(span))
    return math.floor(lower / step) * step - step, math.ceil(upper / step) * step + step


def input_domain(
    sources: Sequence[tuple[str, int | None, list[Path]]], inputs: Sequence[str]
) -> dict[str, dict[str, Any]] | None:
    """Where the model was trained, per input: what serving accepts (see ``registry._in_domain``).

    A number: the column's range widened outward, and whether every value is whole (inputs are
    then rounded to whole numbers); a text column of at most :data:`MAX_LEVELS` values: those
    values; a larger text column: ``open``.  Computed over the whole first training dataset
    holding every input; ``None`` when there is none.
    """
    for _name, _version, paths in sources:
        files = [p for p in paths if p.exists()]
        if not files:
            continue
        con = duckdb.connect(":memory:", config={"autoload_known_extensions": False})
        try:
            src = f"read_parquet({_files(files)}, union_by_name = true)"
            types = {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
            if not all(c in types for c in inputs):
                continue
            domain: dict[str, dict[str, Any]] = {}
            for col in inputs:
                if types[col].startswith(_NUMERIC):
                    lo, hi, whole = con.execute(
                        f"SELECT min(v), max(v), bool_and(v = floor(v)) FROM "
                        f"(SELECT CAST({_q(col)} AS DOUBLE) AS v FROM {src} WHERE {_q(col)} IS NOT NULL)"
                    ).fetchone() or (None, None, None)
                    if lo is None or not (math.isfinite(lo) and math.isfinite(hi)):
                        domain[col] = {"kind": "open"}
                        continue
                    lower, upper = _outward(float(lo), float(hi))
                    domain[col] = {"kind": "number", "lower": lower, "upper": upper, "whole": bool(whole)}
                    continue
                levels = con.execute(
                    f"SELECT DISTINCT CAST({_q(col)} AS VARCHAR) FROM {src} "
                    f"WHERE {_q(col)} IS NOT NULL LIMIT {MAX_LEVELS + 1}"
                ).fetchall()
                if len(levels) > MAX_LEVELS:
                    domain[col] = {"kind": "open"}
                else:
                    domain[col] = {"kind": "category", "levels": sorted(str(r[0]) for r in levels)}
            return domain
        finally:
            con.close()
    return None
