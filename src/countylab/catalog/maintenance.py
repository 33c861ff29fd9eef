"""Background upkeep of the catalog: compaction of pushed micro-batches and crash clean-up.

Compaction folds a dataset's stream files into a new version once enough have gathered or the
oldest has waited long enough; readers are never blocked (they read versions plus stream).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from countylab.identity.access import SYSTEM

if TYPE_CHECKING:
    from countylab.lab import Lab

log = logging.getLogger("countylab.catalog")


class Maintenance:
    def __init__(
        self,
        lab: Lab,
        *,
        period_s: float = 10.0,
        min_files: int = 20,
        max_age_s: float = 120.0,
        gc_every_s: float = 600.0,
    ) -> None:
        self.lab, self.period_s, self.min_files, self.max_age_s = lab, period_s, min_files, max_age_s
        self.gc_every_s = gc_every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.lab.recover()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="countylab-catalog-maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def step(self) -> int:
        """Compact every dataset whose stream is large or old enough; returns how many."""
        from sqlalchemy import select

        from countylab.storage.models import Dataset

        with self.lab.tx() as s:
            targets = [(d.id, d.name) for d in s.execute(select(Dataset)).scalars() if d.table_schema]
        done = 0
        now = time.time()
        for dataset_id, name in targets:
            files = self.lab.warehouse.pending_stream(name)
            if not files:
                continue
            oldest = min(p.stat().st_mtime for p in files)
            due = len(files) >= self.min_files or now - oldest >= self.max_age_s
            if due and self.lab.ingestion.compact(SYSTEM, dataset_id) is not None:
                done += 1
        return done

    def _run(self) -> None:
        last_gc = time.time()
        while not self._stop.wait(self.period_s):
            try:
                self.step()
                if time.time() - last_gc > self.gc_every_s:
                    self.lab.recover()
                    last_gc = time.time()
            except Exception:  # noqa: BLE001 - upkeep must survive one bad dataset
                log.exception("catalog maintenance failed")
