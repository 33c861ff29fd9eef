"""A short-lived cache of who a bearer token (or a browser session) belongs to.

API clients such as department feeds send many requests a second with the same token; looking
the token and the user's memberships up each time costs more than the work itself.  Entries live
``ttl_s`` seconds and the whole cache is dropped after any state change made through this server
(see ``web.app.RequestContext``), so a revoked token or a removed role stops working at once
here, and within ``ttl_s`` when the change came from another process (the CLI).

Browser sessions are cached the same way, with the session's CSRF token and display name: every
page view and every polling request of the UI resolved its session again (session, user, roles,
organisation, memberships), a fifth of the server's time under load (``bench/load.py``).  A
cached session is still checked to exist, unexpired, for an active user (one indexed query in
``web.deps``), so logging out or ending it from another process takes effect at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from countylab.identity.access import Principal


@dataclass(frozen=True)
class CachedSession:
    principal: Principal
    csrf: str
    display_name: str


class PrincipalCache:
    def __init__(self, ttl_s: float = 2.0, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._sessions: dict[str, tuple[float, CachedSession]] = {}
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

    def get_session(self, key: str) -> CachedSession | None:
        with self._lock:
            hit = self._sessions.get(key)
            if hit is None:
                return None
            if hit[0] < time.monotonic():
                del self._sessions[key]
                return None
            return hit[1]

    def put_session(self, key: str, entry: CachedSession) -> None:
        with self._lock:
            if len(self._sessions) >= self.max_entries:
                self._sessions.clear()
            self._sessions[key] = (time.monotonic() + self.ttl_s, entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._sessions.clear()
