"""Differentially private SQL engine and SDC rules (the DP gateway's core).

Public surface: build ``TableSpec``s from the catalog, create a ``DPEngine`` over a grant's
tables (with a ``WorkerRunner`` in the server), ``plan`` → charge ``plan.cost`` → ``execute``.
"""

from countylab.privacy.engine import DPEngine
from countylab.privacy.planner import QueryPlan
from countylab.privacy.result import DPResult
from countylab.privacy.sandboxed_duckdb import QueryTimeout
from countylab.privacy.sdc import CellStats, SdcRules, cell_stats, check_frequency, check_magnitude
from countylab.privacy.spec import ColumnKind, ColumnPolicy, EngineSettings, SandboxLimits, TableSpec
from countylab.privacy.worker import ExactRunner, InProcessRunner, WorkerRunner

__all__ = [
    "CellStats", "ColumnKind", "ColumnPolicy", "DPEngine", "DPResult", "EngineSettings", "ExactRunner",
    "InProcessRunner", "QueryPlan", "QueryTimeout", "SandboxLimits", "SdcRules", "TableSpec", "WorkerRunner",
    "cell_stats", "check_frequency", "check_magnitude",
]
