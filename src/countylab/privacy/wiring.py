"""Attach the DP SQL gateway to a lab: ``lab.dp`` and its worker process.

Cheap on purpose: ``attach`` runs for every Lab, so it imports nothing heavy (OpenDP alone
takes a second) and starts nothing.  The gateway is built on first use (``gateway_of``); its
worker process is spawned on the first query and stopped with the lab's background work.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from countylab.privacy.gateway import QueryGateway


class LazyGateway:
    """Builds the ``QueryGateway`` of a lab the first time it is needed."""

    def __init__(self, lab: Any) -> None:
        self._lab = lab
        self._gateway: QueryGateway | None = None
        self._lock = threading.Lock()

    def get(self) -> QueryGateway:
        with self._lock:
            if self._gateway is None:
                from countylab.privacy.gateway import QueryGateway
                from countylab.privacy.limits import GatewayConfig
                from countylab.privacy.spec import EngineSettings
                from countylab.privacy.worker import sandbox_limits

                config = GatewayConfig.from_settings(self._lab.settings)
                # Prepared versions and DuckDB's spill files live in the lab's data directory.
                engine = EngineSettings(limits=sandbox_limits(self._lab.settings))
                self._gateway = QueryGateway(
                    self._lab.tx, self._lab.ingestion, settings=engine, config=config
                )
            return self._gateway

    def close(self) -> None:
        with self._lock:
            if self._gateway is not None:
                self._gateway.close()


def attach(lab: Any) -> None:
    holder = LazyGateway(lab)
    lab.dp = holder
    lab.register_background("dp-worker", lambda: None, lambda: _close(lab))


def _close(lab: Any) -> None:
    dp = getattr(lab, "dp", None)
    if dp is not None:
        dp.close()


def gateway_of(lab: Any) -> QueryGateway:
    """The lab's gateway: built lazily, or one a test or an operator put in ``lab.dp``."""
    dp = lab.dp
    if isinstance(dp, LazyGateway):
        return dp.get()
    from countylab.privacy.gateway import QueryGateway

    assert isinstance(dp, QueryGateway)
    return dp
