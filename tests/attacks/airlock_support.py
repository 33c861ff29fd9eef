"""The stage of the pre-review and resubmission attacks: a lab with real sandboxed jobs.

One lab per test module (:func:`stage`): the airlock world of ``tests.airlock_e2e`` (a
developer's project granted a 一般3级 dataset of residents with ID numbers, names and phones;
three independent checkers; a steward), plus a 一般1级 dataset, and the compute center
running real jobs in the sandbox.  :func:`run_job` submits inline code through the API as the
hostile developer and waits for it to finish; :func:`developer_surfaces` collects every text
the developer can read about a job or a request (API, pages, the outbox route, lists).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from countylab.identity import projects as prj
from countylab.identity.access import SYSTEM
from countylab.storage.jobs_models import Job
from countylab.storage.models import Dataset
from tests.airlock_e2e.conftest import RESIDENTS, World, build_world

FINISHED = {"succeeded", "failed", "killed", "cancelled"}
ID = RESIDENTS[0][1]  # an ID number the job reads from the data
SPEC = """version: 1
actions:
  main:
    run: python main.py
    datasets: [{datasets}]
    outputs: [{outputs}]
    resources: {resources}
"""
DONE = "\nopen('/outbox/done.txt', 'w').write('ok')\n"
DONE_OUTPUT = "{path: done.txt, kind: text}"
READ = (
    "import glob, pyarrow.parquet as pq\n"
    "rows = pq.read_table(glob.glob('/data/residents/*.parquet')[0]).to_pylist()\n"
    "ID = rows[0]['id_number']\n"
)


@dataclass
class Stage:
    world: World
    open_dataset_id: int

    @property
    def lab(self) -> Any:
        return self.world.lab

    def client(self, who: str) -> TestClient:
        return self.world.client(who)


def build_stage(tmp_path: Path) -> Stage:
    world = build_world(tmp_path)
    with world.lab.tx() as s:
        ds = Dataset(
            name="open_stats",
            title="公开统计",
            org_id=s.get(Dataset, world.dataset_id).org_id,  # type: ignore[union-attr]
            grade="general_1",
            tags=[],
            description="",
            contact="",
            update_frequency="static",
            privacy_unit="none",
            privacy_unit_column=None,
            grade_confirmed=True,
            grade_reason="",
        )
        s.add(ds)
        s.flush()
        open_id = ds.id
        prj.grant_dataset(s, SYSTEM, world.project_id, open_id)
    csv = tmp_path / "open.csv"
    csv.write_text("village,households\n青禾村,40\n东岭村,40\n")
    world.lab.ingestion.ingest_file(SYSTEM, open_id, csv)
    with world.lab.tx() as s:
        d = s.get(Dataset, open_id)
        assert d is not None
        d.grade = "general_1"
    world.lab.jobs.start()
    return Stage(world, open_id)


def stage_fixture(tmp_path_factory: Any) -> Iterator[Stage]:
    st = build_stage(tmp_path_factory.mktemp("attack-stage"))
    yield st
    st.world.lab.close()


def run_job(
    stage: Stage,
    main: str,
    *,
    datasets: str = "residents",
    outputs: str = DONE_OUTPUT,
    resources: str = "{cpu: 1, memory_mb: 512, time_s: 30}",
    who: str = "dev",
    project_id: int | None = None,
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Submit ``main`` as a job through the API and wait until it finished; the developer's view."""
    dev = stage.client(who)
    files = {
        "countylab.yaml": SPEC.format(datasets=datasets, outputs=outputs, resources=resources),
        "main.py": main + DONE,
    }
    pid = project_id if project_id is not None else stage.world.project_id
    resp = dev.post(f"/api/projects/{pid}/jobs", json={"files": files})
    assert resp.status_code == 201, resp.text
    job_id = int(resp.json()["id"])
    stage.world.jobs.append(job_id)
    deadline = time.monotonic() + timeout
    while True:
        with stage.lab.tx() as s:
            state = s.get(Job, job_id).state  # type: ignore[union-attr]
        if state in FINISHED:
            break
        assert time.monotonic() < deadline, f"job {job_id} stuck in {state}"
        time.sleep(0.1)
    view = dev.get(f"/api/jobs/{job_id}").json()
    assert view["id"] == job_id
    return dict(view)


def developer_surfaces(stage: Stage, job_id: int, request_id: int | None = None) -> dict[str, str]:
    """Every text the developer can read about ``job_id`` (and ``request_id``), by surface."""
    dev = stage.client("dev")
    pid = stage.world.project_id
    seen = {
        "job": dev.get(f"/api/jobs/{job_id}").text,
        "jobs": dev.get(f"/api/projects/{pid}/jobs").text,
        "my_jobs": dev.get("/api/jobs").text,
        "logs": dev.get(f"/api/jobs/{job_id}/logs").text,
        "usage": dev.get(f"/api/projects/{pid}/usage").text,
        "job_page": dev.get(f"/jobs/{job_id}").text,
        "jobs_page": dev.get("/jobs").text,
        "outbox": dev.get(f"/api/airlock/jobs/{job_id}/outbox").text,
        "new_request_page": dev.get(f"/airlock/new?job_id={job_id}").text,
    }
    if request_id is not None:
        seen["request"] = dev.get(f"/api/airlock/requests/{request_id}").text
        seen["requests"] = dev.get("/api/airlock/requests").text
        seen["request_page"] = dev.get(f"/airlock/requests/{request_id}").text
    for name, text in seen.items():
        assert "Traceback" not in text, name
    return seen


def request_all(stage: Stage, job_id: int, *selectors: str) -> dict[str, Any]:
    """A release request the developer makes (and submits) with ``selectors`` (default ``*``)."""
    body = {
        "job_id": job_id,
        "title": "攻击",
        "files": [{"name": s} for s in (selectors or ("*",))],
        "submit": True,
    }
    resp = stage.client("dev").post("/api/airlock/requests", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())
