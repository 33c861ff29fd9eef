"""A small time-bounded cache for the public pages (counts, open-data readings).

The public home page is the lab's busiest page and the least personal: its figures may be a few
seconds old.  Entries are keyed by the lab (one process may serve several labs in tests) and
expire after ``ttl`` seconds; a miss computes outside the lock, so a slow build never blocks
readers of other keys.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_LOCK = threading.Lock()
_ENTRIES: dict[Hashable, tuple[float, Any]] = {}
_MAX = 512


def cached(key: Hashable, ttl: float, build: Callable[[], T]) -> T:
    now = time.monotonic()
    with _LOCK:
        hit = _ENTRIES.get(key)
    if hit is not None and now - hit[0] < ttl:
        value: T = hit[1]
        return value
    value = build()
    with _LOCK:
        if len(_ENTRIES) >= _MAX:
            _ENTRIES.pop(next(iter(_ENTRIES)))
        _ENTRIES[key] = (time.monotonic(), value)
    return value


def clear() -> None:
    """Forget everything (tests that change what a page shows and look again at once)."""
    with _LOCK:
        _ENTRIES.clear()
