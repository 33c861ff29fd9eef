"""The only DuckDB connection analyst-derived SQL ever reaches.

Why this shape: the permitted tables are copied from Parquet into an in-memory database
*before* the connection is locked; after that external access, extension loading, Python
replacement scans and every setting are off, so even SQL that slipped past the parser can
read no file and change no limit.  Contribution bounding per privacy unit happens here, once
per table version, so each query reads already-bounded rows (that is what keeps DP queries
as fast as raw ones).  A timer thread interrupts queries that run past the time limit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import duckdb

from countylab.errors import TooLarge, UserError, ValidationFailed
from countylab.privacy.spec import ColumnKind, SandboxLimits, TableSpec


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def clamped_name(column: str) -> str:
    """Hidden column holding ``column`` clamped to its steward bounds (NULL → midpoint)."""
    return f"__c_{column}"


def _bounded_source(spec: TableSpec, bound_seed: int) -> str:
    """SELECT that keeps at most ``max_rows_per_unit`` rows per unit.

    The kept rows are chosen by a seeded hash of the row, so the choice is deterministic for a
    dataset version (repeated queries see the same rows) yet not steerable by the analyst.
    Tables without a privacy unit keep one row per ``unique`` key.
    """
    cols = ", ".join(_q(c) for c in spec.columns)
    files = "[" + ", ".join(_lit(p) for p in spec.paths) + "]"
    src = f"SELECT {cols} FROM read_parquet({files})"
    order = f"hash({int(bound_seed)}, {cols})"
    if spec.privacy_unit is not None:
        part = _q(spec.privacy_unit)
        return (
            f"SELECT {cols} FROM ({src}) AS s QUALIFY row_number() OVER "
            f"(PARTITION BY {part} ORDER BY {order}) <= {spec.max_rows_per_unit}"
        )
    uniques = [c for c, p in spec.columns.items() if p.unique]
    if not uniques:
        return src
    quals = " AND ".join(f"row_number() OVER (PARTITION BY {_q(c)} ORDER BY {order}) = 1" for c in uniques)
    return f"SELECT {cols} FROM ({src}) AS s QUALIFY {quals}"


def materialise(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, bound_seed: int, max_enum: int = 10_000
) -> None:
    """Copy one table into memory, bounded per unit, with clamped copies of numeric columns.

    Why the extras: low-cardinality text categories become ENUMs and clamping is done once
    here instead of on every query; together they make a DP query as fast as the raw one.
    """
    stage = _q(f"__stage_{spec.name}")
    con.execute(f"CREATE TEMP TABLE {stage} AS {_bounded_source(spec, bound_seed)}")
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?",
            [f"__stage_{spec.name}"],
        ).fetchall()
    )
    select = []
    for col, pol in spec.columns.items():
        expr = _q(col)
        if pol.kind is ColumnKind.CATEGORY and types.get(col) == "VARCHAR":
            distinct = con.execute(f"SELECT count(DISTINCT {expr}) FROM {stage}").fetchone()
            if distinct is not None and 0 < distinct[0] <= max_enum:
                etype = _q(f"__enum_{spec.name}_{col}")
                con.execute(
                    f"CREATE TYPE {etype} AS ENUM (SELECT DISTINCT {expr} FROM {stage} "
                    f"WHERE {expr} IS NOT NULL ORDER BY 1)"
                )
                expr = f"CAST({expr} AS {etype})"
        select.append(f"{expr} AS {_q(col)}")
        b = pol.bounds()
        if pol.kind is ColumnKind.NUMERIC and b is not None:
            lo, hi = b
            value = f"coalesce(CAST({_q(col)} AS DOUBLE), {(lo + hi) / 2!r})"
            select.append(f"greatest({lo!r}, least({hi!r}, {value})) AS {_q(clamped_name(col))}")
    con.execute(f"CREATE TABLE {_q(spec.name)} AS SELECT {', '.join(select)} FROM {stage}")
    con.execute(f"DROP TABLE {stage}")


def open_sandbox(
    specs: Sequence[TableSpec], limits: SandboxLimits, bound_seed: int = 0
) -> duckdb.DuckDBPyConnection:
    """Create, fill and lock an in-memory connection holding exactly ``specs``."""
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "python_enable_replacements": False,
        },
    )
    con.execute(f"SET memory_limit={_lit(limits.memory_limit)}")
    con.execute(f"SET threads={int(limits.threads)}")
    con.execute("SET preserve_insertion_order=false")
    for spec in specs:
        materialise(con, spec, bound_seed)
    con.execute("SET temp_directory=''")
    con.execute("SET enable_external_access=false")
    con.execute("SET lock_configuration=true")
    return con


def check_single_select(sql: str) -> None:
    """DuckDB's own parser must see exactly one SELECT statement."""
    try:
        stmts = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ValidationFailed("SQL 语法错误", "SQL syntax error", reason=str(exc)) from exc
    if len(stmts) != 1:
        raise ValidationFailed("只允许一条语句", "exactly one statement is allowed", reason="statements")
    if stmts[0].type != duckdb.StatementType.SELECT:
        raise ValidationFailed(
            "只允许 SELECT 查询", "only SELECT queries are allowed", reason=str(stmts[0].type)
        )


class QueryTimeout(UserError):
    code = "query_timeout"


def run_select(
    con: duckdb.DuckDBPyConnection, sql: str, timeout_s: float, max_rows: int
) -> list[tuple[Any, ...]]:
    """Run one SELECT under a watchdog and a row cap; never more than ``max_rows`` rows."""
    check_single_select(sql)
    fired = threading.Event()

    def _interrupt() -> None:
        fired.set()
        con.interrupt()

    timer = threading.Timer(timeout_s, _interrupt)
    timer.daemon = True
    timer.start()
    try:
        rows = con.execute(sql).fetchmany(max_rows + 1)
    except duckdb.Error as exc:
        if fired.is_set():
            raise QueryTimeout(
                "查询超时，已中止", "query ran past the time limit and was stopped", timeout_s=timeout_s
            ) from exc
        raise UserError("查询执行失败", "query failed", reason=type(exc).__name__) from exc
    finally:
        timer.cancel()
    if len(rows) > max_rows:
        raise TooLarge("结果行数超过上限", "result has too many rows", max_rows=max_rows)
    return rows
