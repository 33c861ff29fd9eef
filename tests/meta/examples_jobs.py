"""Meta-test examples of the compute center's state-changing routes (see the meta-test's docstring)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from countylab.identity.access import SYSTEM
from countylab.jobs.queue import move
from countylab.jobs.states import JobState
from tests.meta.example import Example

SPEC = """version: 1
actions:
  main:
    run: python main.py
    datasets: [d1]
    outputs: [{path: done.txt, kind: text}]
"""
MAIN = "open('/outbox/done.txt', 'w').write('ok')\n"
QUOTA = {"max_cpu": 2, "max_memory_mb": 1024, "max_time_s": 600, "cpu_seconds": 7200, "concurrent_jobs": 1}

EXAMPLES = {
    ("POST", "/api/projects/{project_id}/jobs"): Example(
        "dev", {"files": {"countylab.yaml": SPEC, "main.py": MAIN}}
    ),
    ("POST", "/api/jobs/{job_id}/cancel"): Example("dev"),
    ("POST", "/api/jobs/{job_id}/retry"): Example("dev"),
    ("POST", "/api/jobs/{job_id}/admit"): Example("steward"),
    ("PUT", "/api/projects/{project_id}/quota"): Example("steward", QUOTA),
    ("POST", "/projects/{project_id}/jobs"): Example(
        "dev", {"code:countylab.yaml": SPEC, "code:main.py": MAIN}
    ),
    ("POST", "/jobs/{job_id}/cancel"): Example("dev"),
    ("POST", "/jobs/{job_id}/retry"): Example("dev"),
    ("POST", "/jobs/{job_id}/admit"): Example("steward"),
}


def _job(world: Any, *, hold: bool, failed: bool) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp)
        (code / "countylab.yaml").write_text(SPEC)
        (code / "main.py").write_text(MAIN)
        with world.lab.tx() as s:
            job = world.lab.jobs.service.submit(s, SYSTEM, world.project_id, code, hold=hold)
            if failed:
                move(s, job, JobState.failed, actor="system", action="job.refuse")
            return job.id


def fill(world: Any, path: str, actor: str) -> dict[str, str]:
    """A fresh job per call, in the state the route acts on."""
    if "{job_id}" not in path:
        return {}
    if path.endswith("/retry"):
        return {"job_id": str(_job(world, hold=False, failed=True))}
    return {"job_id": str(_job(world, hold=path.endswith("/admit"), failed=False))}
