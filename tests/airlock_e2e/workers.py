"""What a check worker may run in tests, in a module the worker can import by name.

The automatic checks run in a worker forked from a fork server (countylab.airlock.checkrun),
which gets the job and the function to run pickled.  Pickle names functions and classes by
module, and test modules (imported by pytest with ``--import-mode=importlib``) cannot be imported
by name in another process: stand-ins for the checks and for the OCR engine live here.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from countylab.airlock import checkrun


@dataclass(frozen=True)
class ReadsText:
    """An OCR engine that reads the same text in every image."""

    text: str

    def __call__(self, image_png: bytes) -> str:
        return self.text


def hang(job: Any) -> list[Any]:
    time.sleep(60)
    return []


def bomb(job: Any) -> list[Any]:
    blob = [bytearray(2**20) for _ in range(4096)]  # 4 GiB
    return [len(blob)]


def die(job: Any) -> list[Any]:
    os._exit(3)


def raise_value_error(job: Any) -> list[Any]:
    raise ValueError("a check met something it could not read")


def die_once(marker: Path, job: Any) -> Any:
    """Dies the first time (leaving ``marker``), then runs the real checks."""
    if not marker.exists():
        marker.touch()
        os._exit(3)
    return checkrun.execute(job)


# a lock some library of the server holds now and then (an import, an allocator, a pool)
LIBRARY_LOCK = threading.Lock()


def takes_the_library_lock(job: Any) -> Any:
    with LIBRARY_LOCK:
        return checkrun.execute(job)
