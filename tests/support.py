"""Helpers shared by tests (importable as tests.support)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from countylab.config import Settings
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.storage.models import Org
from countylab.web.app import create_app

PASSWORD = "test-password-1"


def build_lab(tmp_path: Path, database_url: str = "", *, migrate: bool = True, **settings: object) -> Lab:
    """A lab whose data folder is ``tmp_path / "lab-data"``; ``migrate=False`` opens one already migrated."""
    s = Settings(
        data_dir=tmp_path / "lab-data",
        database_url=database_url,
        strict_audit=True,
        **settings,
    )  # type: ignore[arg-type]
    lab = Lab(s)
    if migrate:
        lab.migrate()
    return lab


def create_user(
    lab: Lab, username: str, roles: list[str], org: str | None = None, kind: str = "department"
) -> int:
    with lab.tx() as s:
        org_id = None
        if org:
            existing = s.query(Org).filter_by(name=org).one_or_none()
            org_id = (existing or ids.create_org(s, SYSTEM, name=org, kind=kind)).id
        return ids.create_user(
            s, SYSTEM, username=username, password=PASSWORD, display_name=username, roles=roles, org_id=org_id
        ).id


def token_for(lab: Lab, user_id: int, days: int | None = 30) -> str:
    with lab.tx() as s:
        return ids.create_token(s, SYSTEM, user_id=user_id, name="test", days=days).token


def api_client(lab: Lab, user_id: int | None = None) -> TestClient:
    headers = {"Authorization": f"Bearer {token_for(lab, user_id)}"} if user_id else {}
    return TestClient(create_app(lab), headers=headers, raise_server_exceptions=False)


def browser_login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the form like a browser; returns the session's CSRF token."""
    page = client.get("/login")
    pre = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert pre, "login form has a CSRF token"
    resp = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": pre.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/", resp.text
    me = client.get("/me")
    found = re.search(r'name="csrf_token" value="([^"]+)"', me.text)
    assert found
    return found.group(1)


def audit_actions(lab: Lab) -> list[tuple[str, str, str]]:
    from countylab.audit.log import recent

    with lab.tx() as s:
        return [(e.action, e.actor, e.outcome) for e in reversed(recent(s, limit=10_000))]


def finished_job(
    session: Any,
    lab: Lab,
    *,
    project_id: int,
    submitted_by: int,
    datasets: list[str],
    action: str = "analyse",
    state: str = "succeeded",
    files: dict[str, bytes] | None = None,
) -> int:
    """A job row as the compute center leaves it after a run, with ``files`` in its outbox under
    ``<action>/`` (airlock tests need outputs without running the sandbox)."""
    from countylab.storage.jobs_models import Job, JobAttempt

    actions = {
        action: {
            "run": "python a.py",
            "needs": [],
            "datasets": datasets,
            # every file is a declared output, so release requests can select it by its path
            "outputs": [{"path": name, "kind": _output_kind(name)} for name in files or {}],
            "resources": {"cpu": 1, "memory_mb": 512, "time_s": 60, "gpu": 0},
        }
    }
    job = Job(
        project_id=project_id,
        submitted_by=submitted_by,
        name="analysis",
        state=state,
        priority=0,
        spec={"version": 1, "actions": actions},
        spec_yaml="",
        code_path="/nonexistent",
        code_sha256="0" * 64,
        code_bytes=0,
        cpu_seconds_reserved=0,
        gpu_seconds_reserved=0,
        attempts=1,
        lost_count=0,
        cancel_requested=False,
        error="",
    )
    session.add(job)
    session.flush()
    outbox = lab.settings.data_dir / "jobs" / "outbox" / str(project_id) / str(job.id) / "attempt-1"
    session.add(
        JobAttempt(
            job_id=job.id,
            number=1,
            worker_id="test",
            state=state,
            outbox_path=str(outbox),
            actions=[],
            error="",
        )
    )
    for name, data in (files or {}).items():
        path = outbox / action / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return int(job.id)


def _output_kind(name: str) -> str:
    """The kind a countylab.yaml would declare for ``name`` (models are never released)."""
    return "model" if name.endswith((".joblib", ".pkl", ".pickle", ".pt", ".onnx")) else "table"
