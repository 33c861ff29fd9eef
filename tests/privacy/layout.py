"""Engines over the materialised layout the DP planner reads (hidden columns per table).

The planner expects every materialised table to carry, beside its own columns:

* ``__c_<col>``: a numeric column clamped to its steward bounds, NULL → midpoint (DOUBLE);
* ``__i_<col>``: its fixed-point row integer (``fixedpoint.row_int_sql``; read only when
  ``EngineSettings.integer_columns`` is set);
* ``__h``: a seeded hash of the row (UBIGINT);
* ``__rank``: the row's 1-based number within its privacy unit ordered by ``__h`` (1 for
  tables without a unit); every row is kept, bounding happens per query.

``sandboxed_duckdb.materialise`` provides this layout once the storage work lands; until it
does, ``LayoutRunner`` builds the same layout here so the engine semantics can be tested on
their own.  ``engine_for`` picks the real runner whenever the real layout is there.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import duckdb

from countylab.privacy.engine import DPEngine
from countylab.privacy.fixedpoint import row_int_sql
from countylab.privacy.sandboxed_duckdb import clamped_name, open_sandbox, run_select
from countylab.privacy.spec import (
    ColumnKind,
    ColumnPolicy,
    EngineSettings,
    SandboxLimits,
    TableSpec,
)

Rows = list[tuple[Any, ...]]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def build_layout(con: duckdb.DuckDBPyConnection, spec: TableSpec, seed: int) -> None:
    cols = ", ".join(_q(c) for c in spec.columns)
    files = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in spec.paths) + "]"
    extra = [f"hash({int(seed)}, {cols}) AS __h"]
    for col, pol in spec.columns.items():
        b = pol.bounds()
        if pol.kind is ColumnKind.NUMERIC and b is not None:
            lo, hi = b
            v = f"coalesce(TRY_CAST({_q(col)} AS DOUBLE), {(lo + hi) / 2!r})"
            v = f"CASE WHEN isnan({v}) THEN {hi!r} ELSE {v} END"
            c = f"greatest({lo!r}, least({hi!r}, {v}))"
            extra.append(f"{c} AS {_q(clamped_name(col))}")
            extra.append(f"{row_int_sql(c, b)} AS {_q('__i_' + col)}")
    stage = f"SELECT {cols}, {', '.join(extra)} FROM read_parquet({files})"
    rank = (
        f"row_number() OVER (PARTITION BY {_q(spec.privacy_unit)} ORDER BY __h)" if spec.privacy_unit else "1"
    )
    con.execute(f"CREATE TABLE {_q(spec.name)} AS SELECT *, CAST({rank} AS INTEGER) AS __rank FROM ({stage})")


class LayoutRunner:
    """An ``ExactRunner`` over ``build_layout`` tables (unlocked: for tests only)."""

    def __init__(self, limits: SandboxLimits, seed: int = 0) -> None:
        self.limits, self.seed = limits, seed
        self.cons: dict[tuple[str, ...], duckdb.DuckDBPyConnection] = {}

    def run(self, specs: Sequence[TableSpec], sqls: Sequence[str], *, bounded: bool) -> list[Rows]:
        key = tuple(sorted(s.digest() for s in specs))
        con = self.cons.get(key)
        if con is None:
            con = duckdb.connect(":memory:")
            con.execute("SET threads=1")
            for s in specs:
                build_layout(con, s, self.seed)
            self.cons[key] = con
        return [run_select(con, sql, self.limits.timeout_s, self.limits.max_internal_groups) for sql in sqls]

    def close(self) -> None:
        for con in self.cons.values():
            con.close()
        self.cons.clear()


@functools.cache
def real_layout() -> bool:
    """Whether ``sandboxed_duckdb.materialise`` already writes ``__rank`` and ``__h``."""
    import tempfile

    import pandas as pd

    with tempfile.TemporaryDirectory() as d:
        path = f"{d}/t.parquet"
        pd.DataFrame({"u": [1, 1], "x": [1.0, 2.0]}).to_parquet(path)
        spec = TableSpec(
            "t",
            (path,),
            "u",
            1,
            {"u": ColumnPolicy(ColumnKind.IDENTIFIER), "x": ColumnPolicy(ColumnKind.NUMERIC, 0, 1)},
        )
        try:
            con = open_sandbox([spec], SandboxLimits(memory_limit="256MB", threads=1))
        except Exception:  # noqa: BLE001 - a storage layer in flux: fall back to the test layout
            return False
        try:
            names = {r[0] for r in con.execute("DESCRIBE t").fetchall()}
            rows = con.execute("SELECT count(*) FROM t").fetchone()
        finally:
            con.close()
        return {"__rank", "__h"} <= names and rows is not None and rows[0] == 2


def engine_for(
    *specs: TableSpec,
    bucket: float = 0.0,
    timeout_s: float = 10.0,
    max_rows: int = 1000,
    max_internal_groups: int = 1_000_000,
    integer_columns: bool = False,
) -> DPEngine:
    limits = SandboxLimits(
        memory_limit="512MB",
        threads=1,
        timeout_s=timeout_s,
        max_result_rows=max_rows,
        max_internal_groups=max_internal_groups,
    )
    settings = EngineSettings(limits=limits, time_bucket_s=bucket, integer_columns=integer_columns)
    own = integer_columns or not real_layout()
    runner = LayoutRunner(limits, settings.bound_seed) if own else None
    return DPEngine(list(specs), settings, runner=runner)
