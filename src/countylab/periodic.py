"""A background service that runs one pass every few seconds until it is stopped.

The lab's elected singletons (``Lab.register_background``) each repeat a short, idempotent
pass: a pass that fails is logged and the next one retries, and ``stop`` returns promptly
because the wait between passes is the stop event itself.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("countylab.periodic")


class Periodic:
    """Subclasses set :attr:`thread_name` and implement :meth:`run_once` and :meth:`interval_s_now`."""

    thread_name = "countylab-periodic"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> Any:
        raise NotImplementedError

    def interval_s_now(self) -> float:
        """Seconds to wait after a pass (read each time, so a setting can change it)."""
        raise NotImplementedError

    def _loop(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the next pass retries
                log.exception("%s: pass failed", self.thread_name)
            if self._stop.wait(self.interval_s_now()):
                return

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
