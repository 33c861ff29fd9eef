"""The only DuckDB connection analyst-derived SQL ever reaches.

Why this shape: the permitted tables are prepared versions on disk (``prepared.py``), ATTACHed
read-only to a fresh in-memory connection *before* it is locked; after that external access,
extension loading, Python replacement scans and every setting are off, so even SQL that
slipped past the parser can read no other file and change no limit.  The memory limit and
the spill folder (inside the lab's data directory, never the server's working directory) are
set before the lock too.  A timer thread interrupts queries that run past the time limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import duckdb

from countylab.errors import TooLarge, UserError, ValidationFailed
from countylab.privacy.prepared import CONFIG, Prepared, PreparedStore, clamped_name
from countylab.privacy.spec import SandboxLimits, TableSpec

__all__ = [
    "QueryTimeout",
    "check_single_select",
    "clamped_name",
    "open_prepared",
    "open_sandbox",
    "run_select",
]


def open_prepared(
    store: PreparedStore, tables: Sequence[tuple[TableSpec, Prepared]]
) -> duckdb.DuckDBPyConnection:
    """A locked in-memory connection whose only tables are the prepared ``tables`` (read-only)."""
    con = duckdb.connect(":memory:", config=CONFIG)
    try:
        for stmt in store.settings_sql():
            con.execute(stmt)
        for spec, prep in tables:
            store.attach(con, spec, prep)
        con.execute("SET enable_external_access=false")
        con.execute("SET lock_configuration=true")
    except BaseException:
        con.close()
        raise
    return con


def open_sandbox(
    specs: Sequence[TableSpec], limits: SandboxLimits, bound_seed: int = 0, store: PreparedStore | None = None
) -> duckdb.DuckDBPyConnection:
    """Prepare ``specs`` (if not yet prepared) and open a locked connection over them."""
    store = store or PreparedStore.for_limits(limits, bound_seed)
    return open_prepared(store, [(s, store.get(s)) for s in specs])


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


class _Watchdog:
    """One thread per process interrupts every query that runs past its deadline.

    Why not a ``threading.Timer`` per query: starting a thread costs milliseconds on a busy
    machine, a visible share of a warm query; this thread is started once and sleeps until
    the earliest deadline.
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._armed: dict[int, list[Any]] = {}  # token -> [deadline, connection, fired]
        self._next = 0
        self._thread: threading.Thread | None = None

    def arm(self, con: duckdb.DuckDBPyConnection, timeout_s: float) -> int:
        with self._cv:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="dp-watchdog", daemon=True)
                self._thread.start()
            self._next += 1
            self._armed[self._next] = [time.monotonic() + timeout_s, con, False]
            self._cv.notify()
            return self._next

    def disarm(self, token: int) -> bool:
        """Forget ``token``; whether its query was interrupted."""
        with self._cv:
            return bool(self._armed.pop(token)[2])

    def _loop(self) -> None:
        with self._cv:
            while True:
                now = time.monotonic()
                for entry in self._armed.values():
                    if not entry[2] and entry[0] <= now:
                        entry[2] = True
                        entry[1].interrupt()
                pending = [e[0] for e in self._armed.values() if not e[2]]
                self._cv.wait(timeout=min(pending) - now if pending else None)


_WATCHDOG = _Watchdog()


def run_select(
    con: duckdb.DuckDBPyConnection, sql: str, timeout_s: float, max_rows: int
) -> list[tuple[Any, ...]]:
    """Run one SELECT under a watchdog and a row cap; never more than ``max_rows`` rows."""
    check_single_select(sql)
    token = _WATCHDOG.arm(con, timeout_s)
    fired = False
    try:
        rows = con.execute(sql).fetchmany(max_rows + 1)
    except duckdb.Error as exc:
        fired = _WATCHDOG.disarm(token)
        token = 0
        if fired:
            raise QueryTimeout(
                "查询超时，已中止", "query ran past the time limit and was stopped", timeout_s=timeout_s
            ) from exc
        raise UserError("查询执行失败", "query failed", reason=type(exc).__name__) from exc
    finally:
        if token:
            _WATCHDOG.disarm(token)
    if len(rows) > max_rows:
        raise TooLarge("结果行数超过上限", "result has too many rows", max_rows=max_rows)
    return rows
