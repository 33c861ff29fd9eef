"""Where exact aggregates are computed: a locked DuckDB, in-process or in a worker process.

Why a worker process: the analyst-facing engine must hold no metadata-DB credentials and no
handle on the rest of the lab, and a runaway query must be killable without taking the server
down.  The worker is started with ``spawn`` (a fresh interpreter that inherits nothing but the
arguments) and kept warm: it caches locked connections keyed by the set of table versions, so
the Parquet files are materialised and bounded once, not on every query.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

import duckdb

from countylab import errors
from countylab.privacy.sandboxed_duckdb import QueryTimeout, open_sandbox, run_select
from countylab.privacy.spec import SandboxLimits, TableSpec

Rows = list[tuple[Any, ...]]


class ExactRunner(Protocol):
    """Runs engine-written SELECTs over the permitted tables and returns exact rows."""

    def run(self, specs: Sequence[TableSpec], sqls: Sequence[str], *, bounded: bool) -> list[Rows]: ...

    def close(self) -> None: ...


class _ConnectionCache:
    """Locked connections keyed by (table versions, bounded?); least recently used evicted."""

    def __init__(self, limits: SandboxLimits, bound_seed: int, size: int = 2) -> None:
        self.limits, self.seed, self.size = limits, bound_seed, size
        self.cons: OrderedDict[tuple[Any, ...], duckdb.DuckDBPyConnection] = OrderedDict()

    def get(self, specs: Sequence[TableSpec], bounded: bool) -> duckdb.DuckDBPyConnection:
        key = (tuple(sorted(s.digest() for s in specs)), bounded)
        con = self.cons.get(key)
        if con is None:
            if not bounded:
                specs = [_unbounded(s) for s in specs]
            try:
                con = open_sandbox(specs, self.limits, self.seed)
            except duckdb.Error as exc:  # e.g. the tables do not fit the memory limit
                raise errors.UserError(
                    "数据装载失败（可能超出查询引擎的内存上限）",
                    "loading the tables failed (the query engine's memory limit?)",
                    reason=type(exc).__name__,
                ) from exc
            self.cons[key] = con
            while len(self.cons) > self.size:
                self.cons.popitem(last=False)[1].close()
        self.cons.move_to_end(key)
        return con

    def run(self, specs: Sequence[TableSpec], sqls: Sequence[str], bounded: bool) -> list[Rows]:
        con = self.get(specs, bounded)
        lim = self.limits
        return [run_select(con, sql, lim.timeout_s, lim.max_internal_groups) for sql in sqls]


def _unbounded(spec: TableSpec) -> TableSpec:
    """Same table without the per-unit row cap (SDC mode releases exact cells of all rows)."""
    return TableSpec(
        spec.name,
        spec.paths,
        None,
        1,
        {c: p.__class__(kind=p.kind) for c, p in spec.columns.items()},
        spec.version,
    )


class InProcessRunner:
    """Runner in the calling process: for tests and embedded use where isolation is not needed."""

    def __init__(self, limits: SandboxLimits, bound_seed: int = 0) -> None:
        self._cache = _ConnectionCache(limits, bound_seed)
        self._lock = threading.Lock()

    def run(self, specs: Sequence[TableSpec], sqls: Sequence[str], *, bounded: bool) -> list[Rows]:
        with self._lock:
            return self._cache.run(specs, sqls, bounded)

    def close(self) -> None:
        for con in self._cache.cons.values():
            con.close()
        self._cache.cons.clear()


def _worker_main(conn: Connection, limits: SandboxLimits, bound_seed: int) -> None:
    os.environ.clear()  # spawn copies the parent environment; drop any credentials in it
    cache = _ConnectionCache(limits, bound_seed)
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        if msg == "env":  # lets tests pin that the worker holds no environment
            conn.send(("ok", dict(os.environ)))
            continue
        specs, sqls, bounded = msg
        try:
            conn.send(("ok", cache.run(specs, sqls, bounded)))
        except errors.CountylabError as exc:
            conn.send(("err", type(exc).__name__, exc.message_zh, exc.message_en, exc.details))
        except Exception as exc:  # noqa: BLE001 - reported to the parent as a bug, never swallowed
            conn.send(
                ("err", "BugError", "查询引擎内部错误", "query engine failed", {"reason": type(exc).__name__})
            )


class WorkerRunner:
    """Runner in a warm ``spawn``-ed worker process, killed and restarted if it hangs."""

    def __init__(self, limits: SandboxLimits, bound_seed: int = 0, grace_s: float = 5.0) -> None:
        self.limits, self.seed, self.grace_s = limits, bound_seed, grace_s
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        if self._proc is None or not self._proc.is_alive() or self._conn is None:
            parent, child = self._ctx.Pipe()
            self._proc = self._ctx.Process(
                target=_worker_main, args=(child, self.limits, self.seed), daemon=True
            )
            self._proc.start()
            child.close()
            self._conn = parent
        return self._conn

    def run(self, specs: Sequence[TableSpec], sqls: Sequence[str], *, bounded: bool) -> list[Rows]:
        with self._lock:
            conn = self._start()
            conn.send((list(specs), list(sqls), bounded))
            # Materialising a new table set may take a while; the per-query watchdog runs inside.
            budget = self.limits.timeout_s * max(1, len(sqls)) + self.grace_s + 120.0
            try:
                if not conn.poll(budget):
                    self._kill()
                    raise QueryTimeout("查询超时，工作进程已重启", "query timed out; worker restarted")
                reply = conn.recv()
            except (EOFError, OSError) as exc:  # the worker died (memory limit, killed): restart it
                self._kill()
                raise errors.UserError(
                    "查询引擎进程异常退出，已重启",
                    "the query worker died and was restarted",
                    reason=type(exc).__name__,
                ) from exc
        if reply[0] == "ok":
            result: list[Rows] = reply[1]
            return result
        _, name, zh, en, details = reply
        cls = QueryTimeout if name == "QueryTimeout" else getattr(errors, name, errors.BugError)
        raise cls(zh, en, **details)

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
        self._proc, self._conn = None, None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._proc is not None and self._proc.is_alive():
                self._conn.send(None)
                self._proc.join(5)
            self._kill()
