"""Helpers of the compute-center end-to-end tests: a demo lab copied from one prepared template."""

from __future__ import annotations

import shutil
import time
from contextlib import AbstractContextManager
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import select

from countylab.catalog import preview
from countylab.catalog import service as catalog
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM, Principal
from countylab.jobs.center import JobsCenter
from countylab.lab import Lab
from countylab.storage.jobs_models import Job
from countylab.storage.models import Project, User
from tests.browser import live_server
from tests.support import build_lab

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "elderly-care-model"
FINISHED = {"succeeded", "failed", "killed", "cancelled"}


def demo_lab_from(template: Path, dest: Path) -> Lab:
    """A lab on a copy of the prepared demo data dir (setup_demo(size="tiny") ran once for all)."""
    shutil.copytree(template, dest / "lab-data")
    return build_lab(dest)


def user_id(lab: Lab, username: str) -> int:
    with lab.tx() as s:
        return s.execute(select(User.id).where(User.username == username)).scalar_one()


def principal(lab: Lab, username: str) -> Principal:
    with lab.tx() as s:
        return ids.principal_for(s, ids.get_user(s, user_id(lab, username)), "token")


def project_id(lab: Lab, slug: str) -> int:
    with lab.tx() as s:
        return s.execute(select(Project.id).where(Project.slug == slug)).scalar_one()


def center(lab: Lab) -> JobsCenter:
    return lab.jobs


def wait_state(lab: Lab, job_id: int, states: set[str], timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        with lab.tx() as s:
            state = s.get(Job, job_id).state  # type: ignore[union-attr]
        if state in states:
            return state
        assert time.monotonic() < deadline, f"job {job_id} stuck in {state}"
        time.sleep(0.1)


def write_dummy(lab: Lab, names: list[str], dest: Path, rows: int = 400) -> Path:
    """Dummy Parquet files as the catalog serves them (``<name>.parquet``)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        with lab.tx() as s:
            ds_id = catalog.get_by_name(s, name).id
        table, _ = preview.dummy_table(lab, SYSTEM, ds_id, rows, seed=7)
        pq.write_table(table, dest / f"{name}.parquet")
    return dest


DONE = "\nopen('/outbox/done.txt', 'w').write('ok')\n"


def job_folder(
    root: Path,
    name: str,
    script: str,
    *,
    datasets: str = "[]",
    outputs: str = "[{path: done.txt, kind: text}]",
    resources: str = "{cpu: 1, memory_mb: 256, time_s: 20}",
) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "main.py").write_text(script + DONE)
    (folder / "countylab.yaml").write_text(
        "version: 1\nactions:\n  main:\n    run: python main.py\n"
        f"    datasets: {datasets}\n    outputs: {outputs}\n    resources: {resources}\n"
    )
    return folder


def serve(lab: Lab, **app_kwargs: object) -> AbstractContextManager[str]:
    """The lab's web app on a free local port (uvicorn in a thread), for the CLI and the browser."""
    return live_server(lab, **app_kwargs)
