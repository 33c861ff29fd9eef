"""Fixtures of the dashboard, metric, publication and big-screen tests (imported by name).

A tiny demo county is built once per session and copied for each test (real SQLite, real Parquet),
with the DP gateway running in process (``InProcessRunner``): refreshes are real DP queries through
the real gateway, charged to the real showcase budget, only without worker processes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from countylab.bootstrap import setup_demo
from countylab.identity import service as ids
from countylab.identity.access import Principal
from countylab.lab import Lab
from countylab.privacy.gateway import QueryGateway
from countylab.privacy.limits import GatewayConfig
from countylab.privacy.spec import EngineSettings, SandboxLimits
from countylab.privacy.worker import InProcessRunner
from countylab.storage.models import Dataset, User
from countylab.storage.privacy_models import QueryRun
from tests.support import build_lab

__all__ = ["dash_lab", "dash_template"]  # what `import *` brings: the fixtures

ELDERLY_SQL = (
    "SELECT town_code, COUNT(*) AS n FROM residents WHERE age > 80 AND lives_alone GROUP BY town_code"
)


@pytest.fixture(scope="session")
def dash_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dash-template")
    lab = build_lab(root)
    in_process_gateway(lab)  # the demo's DP statistics (stories, showcase metrics) without worker processes
    setup_demo(lab, size="tiny")
    lab.close()
    return root / "lab-data"


def in_process_gateway(lab: Lab) -> QueryGateway:
    es = EngineSettings(time_bucket_s=0.0, limits=SandboxLimits())
    config = GatewayConfig(project_concurrency=64, rate_per_minute=100_000, wall_clock_s=60.0)
    gateway = QueryGateway(lab.tx, lab.ingestion, es, InProcessRunner(es.limits, es.bound_seed), config)
    lab.gateway = gateway
    return gateway


@pytest.fixture
def dash_lab(tmp_path: Path, dash_template: Path) -> Iterator[Lab]:
    shutil.copytree(dash_template, tmp_path / "lab-data")
    lab = build_lab(tmp_path, migrate=False)
    in_process_gateway(lab)
    yield lab
    lab.close()


def principal(lab: Lab, username: str) -> Principal:
    with lab.tx() as s:
        uid = s.execute(select(User.id).where(User.username == username)).scalar_one()
        return ids.principal_for(s, ids.get_user(s, uid), "session")


def dataset_id(lab: Lab, name: str) -> int:
    with lab.read() as s:
        return int(s.execute(select(Dataset.id).where(Dataset.name == name)).scalar_one())


def query_runs(lab: Lab) -> int:
    with lab.read() as s:
        return int(s.execute(select(func.count()).select_from(QueryRun)).scalar_one())


def open_bar(lab: Lab, **extra: Any) -> dict[str, Any]:
    """An open-data widget: mean PM2.5 by town of the demo's air-quality feed."""
    return {
        "kind": "bar",
        "title": "各镇PM2.5均值",
        "unit": "微克/立方米",
        "source_kind": "open",
        "source": {
            "dataset_id": dataset_id(lab, "air_quality"),
            "group_by": "town_code",
            "value": "pm25",
            "aggregate": "avg",
        },
        **extra,
    }
