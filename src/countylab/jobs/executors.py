"""Where attempts run: one :class:`Executor` interface, a local thread pool by default.

The dispatcher (:mod:`countylab.jobs.dispatch`) claims jobs from the queue and hands each
attempt to an executor; the executor runs it (here: worker threads, or Ray tasks in
:mod:`countylab.jobs.ray_executor`) and reports outcomes through :meth:`Executor.poll`.  An
executor never touches the database, so the queue's guarantees do not depend on it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from countylab.jobs.attempt import AttemptOutcome, AttemptTicket, SandboxRunner, run_attempt
from countylab.jobs.states import JobState


class Executor(Protocol):
    def free_slots(self) -> int:
        """How many more attempts it can take now."""
        ...

    def submit(self, ticket: AttemptTicket) -> None: ...

    def poll(self) -> list[AttemptOutcome]:
        """Outcomes finished since the last call (each reported once)."""
        ...

    def cancel(self, job_id: int) -> None:
        """Ask the attempt of ``job_id`` to stop; its outcome then arrives as ``cancelled``."""
        ...

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from any thread) when an outcome is ready, to wake the dispatcher."""
        ...

    def shutdown(self) -> None: ...


class LocalExecutor:
    """``workers`` threads in this process, each running the sandbox runner.

    ``gpus``: device indexes of this machine ("0", "1"…).  A job asking for N GPUs waits in
    its thread until N are free, then gets them as ``ticket.gpu_devices``.
    """

    def __init__(self, runner: SandboxRunner, *, workers: int = 2, gpus: Sequence[str] = ()) -> None:
        self._runner = runner
        self._inbox: queue.SimpleQueue[AttemptTicket | None] = queue.SimpleQueue()
        self._done: list[AttemptOutcome] = []
        self._cancels: dict[int, threading.Event] = {}
        self._busy = 0
        self._lock = threading.Lock()
        self._free_gpus = list(gpus)
        self._gpu_cond = threading.Condition(self._lock)
        self._callbacks: list[Callable[[], None]] = []
        self._workers = workers
        self._threads = [
            threading.Thread(target=self._work, name=f"countylab-job-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def free_slots(self) -> int:
        with self._lock:
            return self._workers - self._busy

    def submit(self, ticket: AttemptTicket) -> None:
        with self._lock:
            self._busy += 1
            self._cancels[ticket.job_id] = threading.Event()
        self._inbox.put(ticket)

    def poll(self) -> list[AttemptOutcome]:
        with self._lock:
            done, self._done = self._done, []
        return done

    def cancel(self, job_id: int) -> None:
        with self._lock:
            event = self._cancels.get(job_id)
            if event is not None:
                event.set()
                self._gpu_cond.notify_all()

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def shutdown(self) -> None:
        for event in list(self._cancels.values()):
            event.set()
        for _ in self._threads:
            self._inbox.put(None)
        for t in self._threads:
            t.join(timeout=30)

    def _take_gpus(self, n: int, cancel: threading.Event) -> list[str] | None:
        with self._gpu_cond:
            while len(self._free_gpus) < n and not cancel.is_set():
                self._gpu_cond.wait(timeout=1.0)
            if cancel.is_set():
                return None
            taken, self._free_gpus = self._free_gpus[:n], self._free_gpus[n:]
            return taken

    def _work(self) -> None:
        while True:
            ticket = self._inbox.get()
            if ticket is None:
                return
            with self._lock:
                cancel = self._cancels[ticket.job_id]
            outcome = self._run(ticket, cancel)
            with self._lock:
                self._done.append(outcome)
                self._busy -= 1
                self._cancels.pop(ticket.job_id, None)
            for cb in self._callbacks:
                cb()

    def _run(self, ticket: AttemptTicket, cancel: threading.Event) -> AttemptOutcome:
        gpus: list[str] = []
        if ticket.gpus:
            taken = self._take_gpus(ticket.gpus, cancel)
            if taken is None:
                return AttemptOutcome(ticket.job_id, ticket.attempt, JobState.cancelled)
            gpus = taken
        try:
            if gpus:
                ticket = replace(ticket, gpu_devices=tuple(gpus))
            return run_attempt(ticket, self._runner, cancel)
        except Exception as exc:  # noqa: BLE001 - a bug in one attempt must not kill the worker
            return AttemptOutcome(
                ticket.job_id, ticket.attempt, JobState.failed, error=f"{type(exc).__name__}: {exc}"
            )
        finally:
            if gpus:
                with self._gpu_cond:
                    self._free_gpus.extend(gpus)
                    self._gpu_cond.notify_all()
