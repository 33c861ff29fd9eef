"""Where exact aggregates are computed: a locked DuckDB, in-process or in a worker process.

Why a worker process: the analyst-facing engine must hold no metadata-DB credentials and no
handle on the rest of the lab, and a runaway query must be killable without taking the server
down.  The worker is started with ``spawn`` (a fresh interpreter that inherits nothing but the
arguments) and kept warm.  Table versions are prepared once into files of the lab's data
directory (``prepared.py``) and shared by every worker and restart; a worker holds one locked
connection over them at a time, so it never keeps a second copy of a version in memory.

``prepare(specs)`` makes the versions ready (or raises a ``UserError``) without running any
SQL: the gateway calls it *before* charging a budget, so a version that cannot be prepared
(memory, disk) charges nothing.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import duckdb

from countylab import errors
from countylab.privacy.prepared import Prepared, PreparedStore
from countylab.privacy.sandboxed_duckdb import QueryTimeout, open_prepared, run_select
from countylab.privacy.spec import SandboxLimits, TableSpec

Rows = list[tuple[Any, ...]]


class ExactRunner(Protocol):
    """Runs engine-written SELECTs over the permitted tables and returns exact rows.

    ``bounded`` is accepted for compatibility and ignored: prepared tables are never truncated;
    the engine's SQL bounds contributions on the relation it aggregates (``__rank``).
    """

    def prepare(self, specs: Sequence[TableSpec]) -> None: ...

    def run(self, specs: Sequence[TableSpec], sqls: Sequence[str], *, bounded: bool = True) -> list[Rows]: ...

    def close(self) -> None: ...


def sandbox_limits(settings: Any, **overrides: Any) -> SandboxLimits:
    """``SandboxLimits`` of a lab from its ``countylab.config.Settings`` (memory, data directory)."""
    values: dict[str, Any] = {
        "memory_limit": settings.dp_memory_limit,
        "threads": settings.dp_threads,
        "data_dir": str(Path(settings.data_dir).resolve()),
    }
    values.update(overrides)
    return SandboxLimits(**values)


class _Tables:
    """The prepared-version store and the one locked connection currently open over it."""

    def __init__(self, limits: SandboxLimits, bound_seed: int) -> None:
        self.limits = limits
        self.store = PreparedStore.for_limits(limits, bound_seed)
        self.store.clean_spill()
        self.store.gc()
        self.key: tuple[tuple[str, str], ...] | None = None
        self.con: duckdb.DuckDBPyConnection | None = None

    def prepare(self, specs: Sequence[TableSpec]) -> list[Prepared]:
        out = []
        for spec in specs:
            found = self.store.load(self.store.key(spec))
            if found is None:
                self.drop()  # free the open connection's buffers before preparing
                try:
                    found = self.store.get(spec)
                except (duckdb.Error, OSError) as exc:  # memory limit, disk full, unreadable file
                    raise errors.UserError(
                        "数据版本准备失败（可能超出查询引擎的内存或磁盘上限）",
                        "preparing the dataset version failed (the query engine's memory or disk limit?)",
                        table=spec.name,
                        reason=type(exc).__name__,
                    ) from exc
            out.append(found)
        return out

    def connection(self, specs: Sequence[TableSpec]) -> duckdb.DuckDBPyConnection:
        preps = self.prepare(specs)
        key = tuple(sorted((s.name, p.key) for s, p in zip(specs, preps, strict=True)))
        if self.con is None or key != self.key:
            self.drop()
            for prep in preps:
                self.store.touch(prep.key)
            try:
                self.con = open_prepared(self.store, list(zip(specs, preps, strict=True)))
            except duckdb.Error as exc:
                raise errors.UserError(
                    "数据装载失败", "opening the prepared tables failed", reason=type(exc).__name__
                ) from exc
            self.key = key
        return self.con

    def run(self, specs: Sequence[TableSpec], sqls: Sequence[str]) -> list[Rows]:
        con = self.connection(specs)
        lim = self.limits
        return [run_select(con, sql, lim.timeout_s, lim.max_internal_groups) for sql in sqls]

    def drop(self) -> None:
        if self.con is not None:
            self.con.close()
        self.con, self.key = None, None


class InProcessRunner:
    """Runner in the calling process: for tests and embedded use where isolation is not needed."""

    def __init__(self, limits: SandboxLimits, bound_seed: int = 0) -> None:
        self._tables = _Tables(limits, bound_seed)
        self._lock = threading.Lock()

    def prepare(self, specs: Sequence[TableSpec]) -> None:
        with self._lock:
            self._tables.prepare(specs)

    def run(self, specs: Sequence[TableSpec], sqls: Sequence[str], *, bounded: bool = True) -> list[Rows]:
        with self._lock:
            return self._tables.run(specs, sqls)

    def close(self) -> None:
        with self._lock:
            self._tables.drop()


def _worker_main(conn: Connection, limits: SandboxLimits, bound_seed: int) -> None:
    os.environ.clear()  # spawn copies the parent environment; drop any credentials in it
    tables = _Tables(limits, bound_seed)
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            tables.drop()
            return
        if msg == "env":  # lets tests pin that the worker holds no environment
            conn.send(("ok", dict(os.environ)))
            continue
        try:
            if msg[0] == "prepare":
                tables.prepare(msg[1])
                conn.send(("ok", None))
            else:
                conn.send(("ok", tables.run(msg[1], msg[2])))
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
        self._ready: set[str] = set()  # digests of versions this runner saw prepared

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

    @property
    def pid(self) -> int | None:
        """The worker's process id (the benchmark reads its peak memory)."""
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    def prepare(self, specs: Sequence[TableSpec]) -> None:
        # Preparing a large new version takes a while (minutes at 100M rows on two cores).
        self._call(("prepare", list(specs)), self.limits.prepare_timeout_s + self.grace_s)
        with self._lock:
            self._ready.update(s.digest() for s in specs)
            if len(self._ready) > 1024:  # a bound, not a cache policy: forgetting costs a round trip
                self._ready.clear()

    def run(self, specs: Sequence[TableSpec], sqls: Sequence[str], *, bounded: bool = True) -> list[Rows]:
        # A version not prepared yet is prepared first, under its own (long) limit; then the
        # queries run under theirs (the per-query watchdog runs inside, this is the backstop).
        with self._lock:
            known = all(s.digest() in self._ready for s in specs)
        if not known:
            self.prepare(specs)
        budget = self.limits.timeout_s * max(1, len(sqls)) + self.grace_s + 120.0
        result: list[Rows] = self._call(("run", list(specs), list(sqls)), budget)
        return result

    def _call(self, msg: tuple[Any, ...], budget: float) -> Any:
        with self._lock:
            conn = self._start()
            try:
                conn.send(msg)
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
            return reply[1]
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
