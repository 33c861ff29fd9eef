"""A tiny demo county built once per session and copied for each test (real SQLite, real Parquet).

``demo_lab`` gives every test its own copy of the lab directory, with the DP gateway running in
process (``InProcessRunner``) and no time padding, so API tests stay fast; the containment tests
use the lab's own gateway with its warm worker process.  ``any_demo_lab`` builds the demo on
SQLite and, in a second run, on PostgreSQL (the budget race runs on both).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from countylab.bootstrap import DEMO_PASSWORD, setup_demo
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM, Principal
from countylab.lab import Lab
from countylab.privacy.gateway import QueryGateway
from countylab.privacy.limits import GatewayConfig
from countylab.privacy.spec import EngineSettings, SandboxLimits
from countylab.privacy.worker import InProcessRunner
from countylab.storage.models import Project, User
from countylab.web.app import create_app
from tests.support import build_lab

PROJECT = "elderly-care-demand"
OTHER_PROJECT = "crop-yield"
ELDERLY_SQL = "SELECT town_code, COUNT(*) FROM residents WHERE age > 80 AND lives_alone GROUP BY town_code"


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo-template")
    lab = build_lab(root)
    setup_demo(lab, size="tiny", steps=False)
    lab.close()
    return root / "lab-data"


#: limits generous enough that semantics tests (and the 100-query budget race) never meet them
ROOMY = GatewayConfig(project_concurrency=256, rate_per_minute=100_000, wall_clock_s=60.0)


def fast_gateway(lab: Lab, **settings: Any) -> QueryGateway:
    """The lab's gateway with an in-process runner and no time padding (tests of semantics)."""
    es = EngineSettings(
        time_bucket_s=settings.pop("time_bucket_s", 0.0), limits=settings.pop("limits", SandboxLimits())
    )
    config = settings.pop("config", ROOMY)
    runner = settings.pop("runner", None) or InProcessRunner(es.limits, es.bound_seed)
    gateway = QueryGateway(lab.tx, lab.ingestion, es, runner, config)
    lab.gateway = gateway
    return gateway


@pytest.fixture
def demo_lab(tmp_path: Path, demo_template: Path) -> Iterator[Lab]:
    shutil.copytree(demo_template, tmp_path / "lab-data")
    lab = build_lab(tmp_path)
    fast_gateway(lab)
    yield lab
    lab.close()


@pytest.fixture
def any_demo_lab(tmp_path: Path, db_url: str, demo_template: Path) -> Iterator[Lab]:
    """The demo county on SQLite and on PostgreSQL (the seed files are reused, not regenerated)."""
    shutil.copytree(demo_template / "seed", tmp_path / "lab-data" / "seed")
    lab = build_lab(tmp_path, db_url)
    setup_demo(lab, size="tiny", steps=False)
    fast_gateway(lab)
    yield lab
    lab.close()


def user_id(lab: Lab, username: str) -> int:
    with lab.tx() as s:
        return s.execute(select(User.id).where(User.username == username)).scalar_one()


def project_id(lab: Lab, slug: str = PROJECT) -> int:
    with lab.tx() as s:
        return s.execute(select(Project.id).where(Project.slug == slug)).scalar_one()


def principal(lab: Lab, username: str) -> Principal:
    with lab.tx() as s:
        return ids.principal_for(s, ids.get_user(s, user_id(lab, username)), "system")


def client_for(lab: Lab, username: str) -> TestClient:
    """An API client authenticated with a fresh token of a demo user (password ``Demo@2026``)."""
    with lab.tx() as s:
        token = ids.create_token(s, SYSTEM, user_id=user_id(lab, username), name="test", days=1).token
    assert DEMO_PASSWORD == "Demo@2026"
    return TestClient(
        create_app(lab), headers={"Authorization": f"Bearer {token}"}, raise_server_exceptions=False
    )


def ask(client: TestClient, sql: str, project: int, epsilon: float | None = 0.1, **extra: Any) -> Any:
    body: dict[str, Any] = {"sql": sql, "project_id": project, **extra}
    if epsilon is not None:
        body["epsilon"] = epsilon
    return client.post("/api/query", json=body)
