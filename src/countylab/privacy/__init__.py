"""Differentially private SQL engine and SDC rules (the DP gateway's core).

Public surface: build ``TableSpec``s from the catalog, create a ``DPEngine`` over a grant's
tables (with a ``WorkerRunner`` in the server), ``plan`` → charge ``plan.cost`` → ``execute``.
The gateway service around it is ``countylab.privacy.gateway.QueryGateway`` (``lab.gateway``).

Names are imported lazily: OpenDP takes over a second to import, and ``Lab`` builds its gateway on
the first query — only a lab that actually answers a query should pay for it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DPEngine": "engine",
    "QueryPlan": "planner",
    "DPResult": "result",
    "QueryTimeout": "sandboxed_duckdb",
    "CellStats": "sdc",
    "SdcRules": "sdc",
    "cell_stats": "sdc",
    "check_frequency": "sdc",
    "check_magnitude": "sdc",
    "ColumnKind": "spec",
    "ColumnPolicy": "spec",
    "EngineSettings": "spec",
    "SandboxLimits": "spec",
    "TableSpec": "spec",
    "ExactRunner": "worker",
    "InProcessRunner": "worker",
    "WorkerRunner": "worker",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'countylab.privacy' has no attribute {name!r}")
    return getattr(importlib.import_module(f"countylab.privacy.{module}"), name)
