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

The child is forked (fast, and it inherits the OCR engine as the parent configured it); it
touches no database and exits with ``os._exit``.  A deadlock in a forked child is not a risk to
the lab: the wall-clock limit kills it like any other hang.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from countylab.airlock.checks import CheckContext, FileReport, OcrEngine, OutputFile, TableSpec, run_checks
from countylab.airlock.checks.base import FileKind
from countylab.airlock.sources import DatasetSource, IndexCache
from countylab.privacy.sdc import SdcRules


class CheckFailedToRun(Exception):
    """The worker died, ran out of time or memory, or returned nothing usable."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


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


def _child(conn: Connection, job: CheckJob, limits: CheckLimits) -> None:
    try:
        # the forked child starts as big as the server; the limit is what it may add
        cap = _vm_bytes() + limits.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        cpu = int(limits.time_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        reports = execute(job)
        conn.send(("ok", reports))
    except MemoryError:
        conn.send(("error", "memory"))
    except BaseException as exc:  # noqa: BLE001 - any failure is "failed to run", never a crash
        conn.send(("error", type(exc).__name__))
    finally:
        conn.close()
        os._exit(0)


_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def _slot(n: int) -> threading.BoundedSemaphore:
    with _slots_lock:
        return _slots.setdefault(n, threading.BoundedSemaphore(max(1, n)))


# a worker that ran out of time or memory would do so again; one that died or raised may have
# met a passing fault of the host (a fork taken while a library held a lock), so it gets one retry
NOT_RETRIED = frozenset({"time", "memory"})


def run_in_worker(job: CheckJob, limits: CheckLimits) -> list[FileReport]:
    """The reports of :func:`execute`, computed in a limited child process (one retry when the
    first worker died or raised rather than running out of time or memory)."""
    try:
        return _run_once(job, limits)
    except CheckFailedToRun as exc:
        if exc.why in NOT_RETRIED:
            raise
        return _run_once(job, limits)


def _run_once(job: CheckJob, limits: CheckLimits) -> list[FileReport]:
    with _slot(limits.concurrent):
        ctx = mp.get_context("fork")
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(child, job, limits), daemon=True)
        proc.start()
        child.close()
        try:
            if not parent.poll(limits.time_s):
                raise CheckFailedToRun("time")
            try:
                status, payload = parent.recv()
            except (EOFError, OSError):
                raise CheckFailedToRun("died") from None
        finally:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
            parent.close()
    if status != "ok":
        raise CheckFailedToRun(str(payload))
    reports: list[FileReport] = payload
    return reports
