"""A small time-bounded cache for the public pages (counts, open-data readings).

The public home page is the lab's busiest page and the least personal: its figures may be a few
seconds old.  Entries are keyed by the lab (one process may serve several labs in tests) and
expire after ``ttl`` seconds.

Twenty visitors arriving as an entry expires must not rebuild it twenty times (each build reads
the database; together they made the home page's p95 seconds long).  So a key is rebuilt by one
caller at a time (*single flight*): while it rebuilds, the others are served the expired value
(*stale while revalidate*), or, when there is none yet, wait for the one build.  A build never
blocks readers of other keys.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_LOCK = threading.Lock()
_ENTRIES: dict[Hashable, tuple[float, Any]] = {}
_BUILDING: dict[Hashable, threading.Lock] = {}
_MAX = 512


def cached(key: Hashable, ttl: float, build: Callable[[], T]) -> T:
    with _LOCK:
        hit = _ENTRIES.get(key)
        gate = _BUILDING.setdefault(key, threading.Lock())
    if hit is not None and time.monotonic() - hit[0] < ttl:
        fresh: T = hit[1]
        return fresh
    if hit is not None and not gate.acquire(blocking=False):
        stale: T = hit[1]  # someone is rebuilding it: the old value, a few seconds older
        return stale
    if hit is None:
        gate.acquire()  # the first build: wait for it rather than start another
    try:
        with _LOCK:
            again = _ENTRIES.get(key)
        if again is not None and time.monotonic() - again[0] < ttl:
            done: T = again[1]  # built by the caller we waited for
            return done
        value = build()
        with _LOCK:
            if key not in _ENTRIES and len(_ENTRIES) >= _MAX:
                _ENTRIES.pop(next(iter(_ENTRIES)))
            _ENTRIES[key] = (time.monotonic(), value)
        return value
    finally:
        gate.release()


def clear() -> None:
    """Forget everything (tests that change what a page shows and look again at once)."""
    with _LOCK:
        _ENTRIES.clear()
