"""The automatic checks run in a worker process with a time limit and a memory limit.

A release request's files are hostile input: a 65 KB XLSX can unpack to a million cells, a
source index can take a minute to build.  None of that may happen under a database write lock
(other users would wait on it) nor in the server process (a parser bomb would take it down).
So the service reads what the checks need in one short transaction, commits, and hands a
:class:`CheckJob` — plain, picklable data — to :func:`run_in_worker`; a second short
transaction records what came back (:meth:`countylab.airlock.service.AirlockService.check_pending`).

The worker is a child process with ``RLIMIT_AS`` (memory) and ``RLIMIT_CPU`` set, and the
parent kills it at the wall-clock limit.  If it dies, runs out of memory or time, or returns
nothing, :class:`CheckFailedToRun` is raised and the request is returned with the rule
``check_failed_to_run``: the state machine never waits on a worker that is gone.

Workers come from a **fork server**, not from a fork of the server process.  The server has many
threads (the web server's, the database pool's, DuckDB's and Arrow's); a fork copies one of them
and every lock the others held at that instant, so a child forked at the wrong moment can hang
or crash in a library it never chose to lock.  That happened, rarely, under CI load: a request
with a clean table was returned with ``check_failed_to_run``.  The fork server is a process of
its own, started once with the check modules already imported (:data:`PRELOAD`) and no other
thread, so each worker is a cheap fork of a single-threaded process.  The job and what the
worker runs (:func:`execute` unless a caller names another module-level function) are pickled,
and the worker (which multiprocessing gives the server's import path and working folder)
reads them in :func:`_child`, where a failure to read them is reported like any other.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import resource
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from countylab.airlock.checks import CheckContext, FileReport, OcrEngine, OutputFile, TableSpec, run_checks
from countylab.airlock.checks.base import FileKind
from countylab.airlock.sources import DatasetSource, IndexCache
from countylab.privacy.sdc import SdcRules


class CheckFailedToRun(Exception):
    """The worker died, ran out of time or memory, or returned nothing usable."""

    def __init__(self, why: str, detail: str = "") -> None:
        super().__init__(why)
        self.why = why  # time | memory | died | the name of the exception the checks raised
        self.detail = detail  # for the operator: the exception's message and where it was raised


@dataclass(frozen=True)
class CheckLimits:
    time_s: float = 120.0
    memory_mb: int = 2048
    concurrent: int = 2  # workers at once (a lab-wide semaphore); more submissions wait their turn


@dataclass(frozen=True)
class CheckJob:
    """Everything the checks need, read in a short transaction: no session, no ORM objects."""

    request_id: int
    round: int
    files: tuple[tuple[int, str, str], ...]  # (release file id, name, stored path)
    tables: Mapping[str, TableSpec]
    sdc: SdcRules
    sources: tuple[DatasetSource, ...]
    index_root: Path
    size_caps: Mapping[FileKind, int]
    ocr: OcrEngine | None = field(default=None, compare=False)


def execute(job: CheckJob) -> list[FileReport]:
    """Build the source index and run every check (what the worker does)."""
    index = IndexCache(job.index_root).index_for(list(job.sources)) if job.sources else None
    context = CheckContext(
        sdc=job.sdc, tables=dict(job.tables), source_index=index, ocr=job.ocr, size_caps=dict(job.size_caps)
    )
    return run_checks([OutputFile(name, Path(path)) for _id, name, path in job.files], context)


def _vm_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


Execute = Callable[[CheckJob], list[FileReport]]


def _child(conn: Connection, work: bytes, limits: CheckLimits) -> None:
    try:
        # unpickled here, not by multiprocessing before this runs, so a job naming something the
        # worker cannot import (a class, the function to run) is reported like any other failure
        job, run = pickle.loads(work)  # noqa: S301 - pickled by the server itself, a moment ago
        # the child starts as big as the fork server; the limit is what it may add
        cap = _vm_bytes() + limits.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        cpu = int(limits.time_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        reports = (run or execute)(job)
        conn.send(("ok", reports))
    except MemoryError:
        conn.send(("error", ("memory", "")))
    except BaseException as exc:  # noqa: BLE001 - any failure is "failed to run", never a crash
        where = traceback.format_exception(exc)[-3:]
        conn.send(("error", (type(exc).__name__, "".join(where)[-2000:])))
    finally:
        conn.close()
        os._exit(0)


# imported once by the fork server, so a worker starts with the checks ready.  Like every child
# multiprocessing starts without a plain fork, a worker also runs the program that started the
# server as ``__mp_main__`` (its main code guarded by ``if __name__ == "__main__":``, as any
# program using multiprocessing must guard it): for the ``countylab`` command that is one import
# of countylab.cli, preloaded here so a worker does not pay for it.
PRELOAD = [
    "countylab.airlock.checkrun",
    "countylab.airlock.checks",
    "countylab.airlock.leakage",
    "countylab.cli",
]
_context_lock = threading.Lock()
_context: mp.context.BaseContext | None = None


def _workers() -> mp.context.BaseContext:
    global _context
    with _context_lock:
        if _context is None:
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _context = ctx
        return _context


_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def _slot(n: int) -> threading.BoundedSemaphore:
    with _slots_lock:
        return _slots.setdefault(n, threading.BoundedSemaphore(max(1, n)))


# a worker that ran out of time or memory would do so again; one that died or raised may have
# met a passing fault of the host (a fork taken while a library held a lock), so it gets one retry
NOT_RETRIED = frozenset({"time", "memory"})


def run_in_worker(job: CheckJob, limits: CheckLimits, run: Execute | None = None) -> list[FileReport]:
    """The reports of :func:`execute` (or of ``run``, a module-level function the worker can
    import), computed in a limited child process; one retry when the first worker died or
    raised rather than running out of time or memory."""
    try:
        return _run_once(job, limits, run)
    except CheckFailedToRun as exc:
        if exc.why in NOT_RETRIED:
            raise
        return _run_once(job, limits, run)


def _run_once(job: CheckJob, limits: CheckLimits, run: Execute | None) -> list[FileReport]:
    with _slot(limits.concurrent):
        ctx = _workers()
        parent, child = ctx.Pipe(duplex=False)
        work = pickle.dumps((job, run))
        proc = ctx.Process(target=_child, args=(child, work, limits), daemon=True)  # type: ignore[attr-defined]
        proc.start()
        child.close()
        try:
            if not parent.poll(limits.time_s):
                raise CheckFailedToRun("time")
            try:
                status, payload = parent.recv()
            except (EOFError, OSError):
                proc.join(5)
                raise CheckFailedToRun("died", f"exit code {proc.exitcode}") from None
        finally:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
            parent.close()
    if status != "ok":
        why, detail = payload
        raise CheckFailedToRun(str(why), str(detail))
    reports: list[FileReport] = payload
    return reports
