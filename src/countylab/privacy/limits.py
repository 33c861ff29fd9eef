"""Admission to the DP gateway: one analyst cannot stall the lab (issue 9, item 5).

* a per-analyst rate limit (token bucket, ``dp_rate_per_minute``): over it, 429 with the
  seconds to wait (``retry_after_s``, sent as ``Retry-After``);
* a per-project concurrency limit (``dp_project_concurrency``): a project with that many
  queries running gets 429 at once, so it can never hold every query worker.

Both are in the server process (one gateway per lab); they bound load, while the privacy
guarantees themselves (budgets, daily caps) live in the database.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from countylab.errors import QuotaExceeded


@dataclass(frozen=True)
class GatewayConfig:
    """The gateway's operating limits, from the lab's settings (``from_settings``)."""

    workers: int = 2
    project_concurrency: int = 2
    rate_per_minute: int = 30
    wall_clock_s: float = 60.0
    max_estimated_rows: int = 2_000_000_000
    period: str = "month"

    @classmethod
    def from_settings(cls, settings: Any) -> GatewayConfig:
        return cls(
            workers=settings.dp_query_workers,
            project_concurrency=settings.dp_project_concurrency,
            rate_per_minute=settings.dp_rate_per_minute,
            wall_clock_s=settings.dp_wall_clock_s,
            max_estimated_rows=settings.dp_max_estimated_rows,
            period=settings.dp_budget_period,
        )


class Admission:
    """Rate limit per analyst and concurrency limit per project, checked on entry."""

    def __init__(self, config: GatewayConfig, clock: Any = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[int, tuple[float, float]] = {}  # user -> (tokens, at)
        self._running: dict[int, int] = {}

    def _take_token(self, user_id: int) -> None:
        cap = float(self.config.rate_per_minute)
        per_s = cap / 60.0
        now = self._clock()
        tokens, at = self._buckets.get(user_id, (cap, now))
        tokens = min(cap, tokens + (now - at) * per_s)
        if tokens < 1.0:
            self._buckets[user_id] = (tokens, now)
            wait = max(1, math.ceil((1.0 - tokens) / per_s))
            raise QuotaExceeded(
                f"查询过于频繁：每分钟最多 {self.config.rate_per_minute} 次，请 {wait} 秒后再试。",
                f"Too many queries: at most {self.config.rate_per_minute} a minute; retry in {wait} s.",
                reason="rate_limited",
                retry_after_s=wait,
            )
        self._buckets[user_id] = (tokens - 1.0, now)

    @contextmanager
    def admit(self, user_id: int, project_id: int) -> Iterator[None]:
        with self._lock:
            if self._running.get(project_id, 0) >= self.config.project_concurrency:
                raise QuotaExceeded(
                    f"本项目已有 {self.config.project_concurrency} 个查询在运行，请稍后再试。",
                    f"This project already has {self.config.project_concurrency} queries running; "
                    "retry shortly.",
                    reason="project_busy",
                    retry_after_s=2,
                )
            self._take_token(user_id)
            self._running[project_id] = self._running.get(project_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._running.get(project_id, 1) - 1
                if left:
                    self._running[project_id] = left
                else:
                    self._running.pop(project_id, None)
