"""The background-service loop: passes repeat, a failing pass does not end the service, and stop
returns at once even with a long interval."""

from __future__ import annotations

import threading
import time

from countylab.periodic import Periodic


class Counter(Periodic):
    thread_name = "test-periodic"

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval, self.passes = interval, 0
        self.third = threading.Event()

    def interval_s_now(self) -> float:
        return self.interval

    def run_once(self) -> None:
        self.passes += 1
        if self.passes == 3:
            self.third.set()
        if self.passes == 1:
            raise RuntimeError("a failing pass")


def test_passes_repeat_after_a_failure_and_stop_is_prompt() -> None:
    svc = Counter(0.01)
    svc.start()
    svc.start()  # idempotent: one thread
    assert svc.third.wait(10)
    svc.stop()
    after = svc.passes
    time.sleep(0.05)
    assert svc.passes == after >= 3


def test_stop_does_not_wait_for_the_interval() -> None:
    svc = Counter(3600)
    svc.start()
    time.sleep(0.05)
    started = time.monotonic()
    svc.stop()
    assert time.monotonic() - started < 5 and svc.passes == 1
