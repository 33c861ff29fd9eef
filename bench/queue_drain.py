"""Queue speed: dispatch latency (submit → start on an idle queue) and the drain rate of 200 tiny jobs.

Runs a real lab (migrated SQLite in a temporary folder) with a dispatcher and ``--workers`` local
worker threads, first with a fake runner that sleeps 10 ms per job (the queue's own cost), then
with the real sandbox when bubblewrap works here (``python job.py`` in bwrap per job).  Latency
is the median over ``--latency-runs`` single submissions.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from countylab.config import Settings
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM, Principal
from countylab.identity.projects import create_project
from countylab.jobs import Dispatcher, JobService, LocalExecutor, Quota, SandboxedRunner, SandboxRunner
from countylab.lab import Lab
from countylab.sandbox import RunState, SandboxResult, SandboxSpec, sandbox_available
from countylab.storage.jobs_models import Job

SPEC = """\
actions:
  main:
    run: python job.py
    outputs: [{path: out.txt, kind: text}]
    resources: {cpu: 1, memory_mb: 256, time_s: 30}
"""
JOB = "open('/outbox/out.txt', 'w').write('ok')\n"
QUOTA = Quota(cpu_seconds=None, concurrent_jobs=10_000)


class SleepRunner:
    """Sleeps 10 ms and writes the declared output, like the smallest real job minus the sandbox."""

    def __init__(self, started: list[float]) -> None:
        self.started = started

    def run(self, spec: SandboxSpec, cancel: threading.Event) -> SandboxResult:
        self.started.append(time.perf_counter())
        spec.outbox_dir.mkdir(parents=True)
        time.sleep(0.01)
        (spec.outbox_dir / "out.txt").write_text("ok")
        log = spec.outbox_dir / "log.txt"
        log.write_text("")
        return SandboxResult(0, RunState.SUCCEEDED, 0.01, 0.0, 0.0, log, log, {})


class Timed:
    """Wraps a runner to record when each run starts."""

    def __init__(self, inner: SandboxRunner, started: list[float]) -> None:
        self.inner, self.started = inner, started

    def run(self, spec: SandboxSpec, cancel: threading.Event) -> SandboxResult:
        self.started.append(time.perf_counter())
        return self.inner.run(spec, cancel)


def _no_datasets(session: Session, project_id: int) -> dict[str, Path]:
    return {}


def _done(lab: Lab) -> int:
    with lab.tx() as s:
        return int(s.execute(select(func.count(Job.id)).where(Job.state == "succeeded")).scalar_one())


def measure(root: Path, runner_kind: str, workers: int, jobs: int, latency_runs: int) -> dict[str, float]:
    lab = Lab(Settings(data_dir=root / runner_kind))
    lab.migrate()
    with lab.tx() as s:
        uid = ids.create_user(
            s,
            SYSTEM,
            username="bench",
            password="bench-password-1",
            display_name="bench",
            roles=["developer"],
        ).id
        pid = create_project(s, Principal(uid, "bench", SYSTEM.roles), slug="bench", title="bench").id
    code = root / runner_kind / "code"
    code.mkdir(parents=True)
    (code / "job.py").write_text(JOB)
    (code / "countylab.yaml").write_text(SPEC)
    started: list[float] = []
    runner: SandboxRunner = (
        SleepRunner(started) if runner_kind == "fake" else Timed(SandboxedRunner(), started)
    )
    d = Dispatcher(
        lab.sessions,
        LocalExecutor(runner, workers=workers),
        datasets=_no_datasets,
        outbox_root=root / runner_kind / "outbox",
        default_quota=QUOTA,
        poll_interval_s=0.5,
    )
    svc = JobService(
        code_root=root / runner_kind / "store", datasets=_no_datasets, default_quota=QUOTA, notify=d.wake
    )
    d.start()
    latencies = []
    for i in range(latency_runs):
        t0 = time.perf_counter()
        with lab.tx() as s:
            svc.submit(s, SYSTEM, pid, code)
        while len(started) <= i:
            time.sleep(0.0005)
        latencies.append(started[i] - t0)
        while _done(lab) <= i:
            time.sleep(0.005)
    d.stop()
    with lab.tx() as s:  # fill the queue first, then time the drain
        for _ in range(jobs):
            svc.submit(s, SYSTEM, pid, code)
    d2 = Dispatcher(
        lab.sessions,
        LocalExecutor(runner, workers=workers),
        datasets=_no_datasets,
        outbox_root=root / runner_kind / "outbox",
        default_quota=QUOTA,
        poll_interval_s=0.5,
    )
    t0 = time.perf_counter()
    d2.start()
    while _done(lab) < latency_runs + jobs:
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    d2.stop()
    lab.close()
    return {
        "dispatch_latency_s": round(statistics.median(latencies), 4),
        "drain_jobs_per_s": round(jobs / elapsed, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--latency-runs", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fake = measure(Path(tmp), "fake", args.workers, args.jobs, args.latency_runs)
        out: dict[str, object] = {**fake, "workers": args.workers, "jobs": args.jobs, "runner": "fake_10ms"}
        if sandbox_available():
            real = measure(Path(tmp), "sandbox", args.workers, args.jobs, args.latency_runs)
            out["sandbox"] = real
        else:
            out["sandbox"] = "bubblewrap not available"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
