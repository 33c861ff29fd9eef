"""Compute-center figures in one JSON line: sandbox start overhead, dispatch latency, queue drain.

- ``sandbox_overhead_ms``: median of 50 ``python -c pass``, fully sandboxed minus bare (every
  protection on; :func:`bench.sandbox_start.measure`).
- ``dispatch_latency_s``: on an idle lab, a submission through the real service
  (``lab.jobs.service.submit``, the wiring a server runs) until the job is ``running`` — median
  of ``--latency-runs``.
- ``drain_jobs_per_s``: ``--jobs`` tiny jobs queued first, then drained by the lab's dispatcher
  with ``job_workers`` (``--workers``) sandboxed workers, every job in the real sandbox.

Run: ``.venv/bin/python bench/sandbox.py`` (``make bench`` runs every script in bench/).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import queue_drain  # noqa: E402 - bench/ scripts import each other, not a package
import sandbox_start  # noqa: E402

from countylab.config import Settings  # noqa: E402
from countylab.identity import service as ids  # noqa: E402
from countylab.identity.access import SYSTEM, Principal  # noqa: E402
from countylab.identity.projects import create_project  # noqa: E402
from countylab.lab import Lab  # noqa: E402
from countylab.sandbox import sandbox_available  # noqa: E402
from countylab.storage.jobs_models import Job  # noqa: E402


def _state(lab: Lab, job_id: int) -> str:
    with lab.tx() as s:
        job = s.get(Job, job_id)
        return job.state if job is not None else ""


def lab_figures(root: Path, workers: int, jobs: int, latency_runs: int) -> dict[str, float]:
    lab = Lab(Settings(data_dir=root / "lab", job_workers=workers))
    lab.migrate()
    with lab.tx() as s:
        uid = ids.create_user(s, SYSTEM, username="bench", password="bench-password-1", display_name="bench",
                              roles=["developer"]).id  # fmt: skip
        pid = create_project(s, Principal(uid, "bench", SYSTEM.roles), slug="bench", title="bench").id
    code = root / "code"
    code.mkdir()
    (code / "job.py").write_text(queue_drain.JOB)
    (code / "countylab.yaml").write_text(queue_drain.SPEC)
    center = lab.jobs
    with lab.tx() as s:
        center.service.set_quota(s, SYSTEM, pid, queue_drain.QUOTA)
    center.start()
    latencies = []
    for _ in range(latency_runs):
        t0 = time.perf_counter()
        with lab.tx() as s:
            job_id = center.service.submit(s, SYSTEM, pid, code).id
        while _state(lab, job_id) in ("queued", "pending"):
            time.sleep(0.0005)
        latencies.append(time.perf_counter() - t0)
        while _state(lab, job_id) == "running":
            time.sleep(0.005)
    center.stop()
    with lab.tx() as s:  # fill the queue, then time the drain with every worker busy
        for _ in range(jobs):
            center.service.submit(s, SYSTEM, pid, code)
    t0 = time.perf_counter()
    center.start()
    while queue_drain._done(lab) < latency_runs + jobs:
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    center.stop()
    lab.close()
    return {
        "dispatch_latency_s": round(statistics.median(latencies), 4),
        "drain_jobs_per_s": round(jobs / elapsed, 2),
        "drain_s": round(elapsed, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=Settings.model_fields["job_workers"].default)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--latency-runs", type=int, default=10)
    args = ap.parse_args()
    if not sandbox_available():
        print(json.dumps({"error": "bubblewrap not available: the sandbox figures need it"}))
        return
    start = sandbox_start.measure()
    with tempfile.TemporaryDirectory() as tmp:
        figures = lab_figures(Path(tmp), args.workers, args.jobs, args.latency_runs)
    print(json.dumps({
        "sandbox_overhead_ms": start["sandbox_overhead_ms"],
        "sandbox_bare_ms": start["bare_ms"],
        "sandboxed_ms": start["sandboxed_ms"],
        **figures,
        "workers": args.workers,
        "jobs": args.jobs,
        "protections": start["protections"],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
