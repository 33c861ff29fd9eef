"""Hand-written fakes of our own ``ExactRunner`` interface for gateway tests (no mocks).

Each wraps a real ``InProcessRunner`` (real DuckDB, real data) and changes one thing: it is
slow, it fails while running, or it fails while preparing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from countylab.privacy.spec import SandboxLimits, TableSpec
from countylab.privacy.worker import InProcessRunner, Rows


class SlowRunner:
    """A real runner that takes ``delay_s`` longer per run and counts runs in flight."""

    def __init__(self, delay_s: float) -> None:
        self.inner = InProcessRunner(SandboxLimits())
        self.delay_s = delay_s
        self.runs = 0
        self.peak = 0
        self._now = 0
        self._lock = threading.Lock()
        self.killed = 0

    def prepare(self, specs: Sequence[TableSpec]) -> None:
        self.inner.prepare(specs)

    def run(self, specs: Sequence[TableSpec], sqls: Sequence[str], *, bounded: bool = True) -> list[Rows]:
        with self._lock:
            self.runs += 1
            self._now += 1
            self.peak = max(self.peak, self._now)
        try:
            time.sleep(self.delay_s)
            return self.inner.run(specs, sqls, bounded=bounded)
        finally:
            with self._lock:
                self._now -= 1

    def kill(self) -> None:
        self.killed += 1

    def close(self) -> None:
        self.inner.close()


class FailingRunner(SlowRunner):
    """Prepares for real, then fails while running with ``error`` (any exception type)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(0.0)
        self.error = error

    def run(self, specs: Sequence[TableSpec], sqls: Sequence[str], *, bounded: bool = True) -> list[Rows]:
        raise self.error


class UnpreparableRunner(SlowRunner):
    """Fails while preparing a version (before any charge)."""

    def prepare(self, specs: Sequence[TableSpec]) -> None:
        raise MemoryError("the version does not fit")


def noop(*_: Any) -> None:
    return None
