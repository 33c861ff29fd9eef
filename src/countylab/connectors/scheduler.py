"""A background thread that runs due pull connectors.

Every ``poll_s`` seconds it looks for enabled connectors whose ``next_run_at`` has passed,
claims each one by moving ``next_run_at`` one interval ahead (a compare-and-set, so two
schedulers sharing a database never run the same connector twice), and syncs them one after
another.  A connector therefore never runs concurrently with itself; a manual "run now" that
collides with a scheduled run is refused by the per-connector guard in ``service.run_sync``.
A failed sync is recorded by ``run_sync`` and the schedule simply goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from countylab.connectors import service
from countylab.errors import CountylabError

log = logging.getLogger("countylab.connectors")


class Scheduler:
    def __init__(
        self,
        host: service.SyncHost,
        *,
        poll_s: float = 15.0,
        source_factory: service.SourceFactory = service.postgres_source,
        max_rows: int = 200_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.host = host
        self.poll_s = poll_s
        self.source_factory = source_factory
        self.max_rows = max_rows
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> list[int]:
        """Run every connector that is due now; returns the ids of the runs made."""
        now = self.clock()
        with self.host.tx() as s:
            due = service.due_connectors(s, now)
        done: list[int] = []
        for connector_id, seen in due:
            if self._stop.is_set():
                break
            with self.host.tx() as s:
                if not service.claim(s, connector_id, seen, now):
                    continue
            try:
                run = service.run_sync(
                    self.host,
                    service.SCHEDULER,
                    connector_id,
                    trigger="schedule",
                    source_factory=self.source_factory,
                    max_rows=self.max_rows,
                )
            except CountylabError as exc:  # deleted meanwhile, or a manual run holds it
                log.info("connector %s skipped: %s", connector_id, exc.message_en)
                continue
            done.append(run.id)
        return done

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - e.g. the metadata database is briefly unavailable
                log.exception("connector scheduler tick failed")
            self._stop.wait(self.poll_s)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self.host.tx() as s:
            interrupted = service.fail_interrupted(s)
        if interrupted:
            log.warning("marked %d interrupted connector runs as failed", interrupted)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="countylab-connectors", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the thread to stop after the current sync, and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
