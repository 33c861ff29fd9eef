"""Attach the airlock (``lab.airlock``) and the model registry (``lab.models``) to a lab.

Cheap by design (it runs for every Lab, tests included): no threads and no sandbox probe.
Model workers start on first prediction; their idle reaper runs with the lab's background
services.  OCR is used when Tesseract with Chinese is installed; otherwise images are marked
"needs human eyes" for the checker.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from countylab.airlock.service import AirlockService
    from countylab.serving.registry import ModelService


def attach(lab: Any) -> None:
    from countylab.airlock.checkrun import CheckLimits
    from countylab.airlock.service import AirlockService
    from countylab.airlock.sources import IndexCache
    from countylab.serving.registry import ModelService
    from countylab.serving.worker import WorkerPool

    lister = _lister(lab)
    root = Path(lab.settings.data_dir) / "airlock"
    ocr = None
    if shutil.which("tesseract"):
        from countylab.airlock.checks.ocr import find_tesseract

        ocr = find_tesseract()
    lab.airlock = AirlockService(
        store_dir=root,
        index_cache=IndexCache(root / "index"),
        read_paths=lab.ingestion.read_paths,
        ocr=ocr,
        outbox_lister=lister,
        check_limits=CheckLimits(lab.settings.check_time_s, lab.settings.check_memory_mb),
    )
    from countylab.airlock.checking import StaleRechecks

    rechecks = StaleRechecks(lab.airlock, lab.tx)  # requests a crash left "submitted"
    lab.register_background("airlock-rechecks", rechecks.start, rechecks.stop)
    pool = WorkerPool()
    lab.models = ModelService(
        models_dir=Path(lab.settings.data_dir) / "models",
        pool=pool,
        outbox_lister=lister,
        read_paths=lab.ingestion.read_paths,
    )
    lab.register_background("model-workers", pool.start, pool.stop)


def _lister(lab: Any) -> Any:
    """None: the airlock resolves outbox files itself from the attempt row in the caller's own
    transaction.  ``countylab.jobs.wiring.outbox_files`` opens a second transaction, which on
    SQLite waits for the first one (BEGIN IMMEDIATE) and deadlocks; both read the same layout."""
    return None


def airlock_of(lab: Any) -> AirlockService:
    """The lab's airlock service, typed (``lab.airlock`` is attached at run time)."""
    service: AirlockService = lab.airlock
    return service


def models_of(lab: Any) -> ModelService:
    """The lab's model registry, typed (``lab.models`` is attached at run time)."""
    service: ModelService = lab.models
    return service
