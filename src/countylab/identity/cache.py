"""A short-lived cache of who a bearer token belongs to.

API clients such as department feeds send many requests a second with the same token; looking
the token and the user's memberships up each time costs more than the work itself.  Entries live
``ttl_s`` seconds and the whole cache is dropped after any state change made through this server
(see ``web.app.RequestContext``), so a revoked token or a removed role stops working at once
here, and within ``ttl_s`` when the change came from another process (the CLI).
"""

from __future__ import annotations

import threading
import time

from countylab.identity.access import Principal


class PrincipalCache:
    def __init__(self, ttl_s: float = 2.0, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Principal | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            if hit[0] < time.monotonic():
                del self._entries[key]
                return None
            return hit[1]

    def put(self, key: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.ttl_s, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
