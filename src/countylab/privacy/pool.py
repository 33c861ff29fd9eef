"""A pool of query workers with one wall clock per request (issue 9, item 5).

One worker process served the whole lab before: one slow query stalled every analyst.  The
pool holds ``dp_query_workers`` runners (each a warm ``WorkerRunner`` process); a query takes
an idle one for all of its statements and gives it back.  The gateway sets one deadline per
request (``deadline``); when it passes, the runner in use is killed (its process restarts on
next use), whatever statement it was in — the wall clock is per request, not per statement.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from countylab.errors import UserError
from countylab.privacy.spec import TableSpec
from countylab.privacy.worker import ExactRunner, Rows


class DeadlineExceeded(UserError):
    """The request's wall clock ran out (the gateway turns it into its one failure answer)."""

    code = "deadline_exceeded"


def _stop(runner: Any) -> None:
    """Kill whatever ``runner`` is running now (a worker process is restarted on next use)."""
    for name in ("kill", "_kill"):
        fn = getattr(runner, name, None)
        if callable(fn):
            fn()
            return


class WorkerPool:
    """``ExactRunner`` over ``size`` runners made by ``factory``; blocks while all are busy."""

    def __init__(self, size: int, factory: Callable[[], ExactRunner]) -> None:
        self.size = max(1, size)
        self._idle: queue.LifoQueue[ExactRunner] = queue.LifoQueue()
        self._all = [factory() for _ in range(self.size)]
        for r in self._all:
            self._idle.put(r)
        self._local = threading.local()

    @property
    def runners(self) -> tuple[ExactRunner, ...]:
        return tuple(self._all)

    @contextmanager
    def deadline(self, at: float) -> Iterator[None]:
        """Every call of this thread inside the block must finish by ``at`` (``time.monotonic``)."""
        self._local.deadline = at
        try:
            yield
        finally:
            self._local.deadline = None

    def _remaining(self) -> float | None:
        at = getattr(self._local, "deadline", None)
        return None if at is None else at - time.monotonic()

    def _call(self, fn: Callable[[ExactRunner], Any]) -> Any:
        left = self._remaining()
        if left is not None and left <= 0:
            raise DeadlineExceeded("查询超时", "the query ran out of time", reason="deadline")
        try:
            runner = self._idle.get(timeout=left)
        except queue.Empty:
            raise DeadlineExceeded("查询超时", "the query ran out of time", reason="deadline") from None
        timer = None
        fired = threading.Event()
        left = self._remaining()
        if left is not None:

            def expire() -> None:
                fired.set()
                _stop(runner)

            timer = threading.Timer(max(0.0, left), expire)
            timer.daemon = True
            timer.start()
        try:
            result = fn(runner)
        except Exception:
            if fired.is_set():
                raise DeadlineExceeded("查询超时", "the query ran out of time", reason="deadline") from None
            raise
        finally:
            if timer is not None:
                timer.cancel()
            self._idle.put(runner)
        if fired.is_set():
            raise DeadlineExceeded("查询超时", "the query ran out of time", reason="deadline")
        return result

    def run(self, specs: Sequence[TableSpec], sqls: Sequence[str], *, bounded: bool = True) -> list[Rows]:
        rows: list[Rows] = self._call(lambda r: r.run(specs, sqls, bounded=bounded))
        return rows

    def prepare(self, specs: Sequence[TableSpec]) -> None:
        """Ready the versions on a worker before any charge (when the runner can prepare)."""

        def go(r: ExactRunner) -> None:
            fn = getattr(r, "prepare", None)
            if callable(fn):
                fn(specs)

        self._call(go)

    def close(self) -> None:
        for r in self._all:
            r.close()
