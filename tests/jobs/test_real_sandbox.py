"""Jobs through the real sandbox: the local executor here, and a local Ray cluster (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from countylab.jobs import Dispatcher, LocalExecutor, SandboxedRunner
from countylab.lab import Lab
from countylab.sandbox import sandbox_available
from countylab.storage.jobs_models import JobAttempt
from tests.jobs.jobs_helpers import BIG, code_folder, developer, service, states, wait_until

needs_bwrap = pytest.mark.needs("sandbox")  # skips with plain pytest; fails under make test

JOB = (
    "import os\nout = os.environ.get('COUNTYLAB_OUTBOX', '/outbox')\nopen(out + '/out.txt', 'w').write('1')\n"
)
TWO_STEPS = """\
actions:
  make:
    run: python job.py
    outputs: [{path: out.txt, kind: text}]
    resources: {cpu: 1, memory_mb: 256, time_s: 30}
  use:
    run: python use.py
    needs: [make]
    outputs: [{path: copy.txt, kind: text}]
    resources: {cpu: 1, memory_mb: 256, time_s: 30}
"""
USE = "open('/outbox/copy.txt', 'w').write(open('/data/needs.make/out.txt').read() + '!')\n"


def _folder(tmp: Path) -> Path:
    folder = code_folder(tmp, spec=TWO_STEPS)
    (folder / "job.py").write_text(JOB)
    (folder / "use.py").write_text(USE)
    return folder


@needs_bwrap
@pytest.mark.sandbox
def test_two_actions_run_in_the_sandbox(lab: Lab, tmp_path: Path) -> None:
    who, pid = developer(lab, "dev", "p1")
    svc = service(lab, tmp_path, default_quota=BIG)
    with lab.tx() as s:
        job_id = svc.submit(s, who, pid, _folder(tmp_path)).id
    d = Dispatcher(
        lab.sessions,
        LocalExecutor(SandboxedRunner(), workers=1),
        datasets=lambda s, p: {},
        outbox_root=tmp_path / "outbox",
        poll_interval_s=0.02,
        default_quota=BIG,
    )
    d.start()
    try:
        wait_until(lambda: states(lab, [job_id]) != ["queued"] and states(lab, [job_id]) != ["running"], 60)
    finally:
        d.stop()
    final = states(lab, [job_id])
    with lab.tx() as s:
        attempt = s.query(JobAttempt).filter_by(job_id=job_id).one()
        assert final == ["succeeded"], attempt.actions
        assert (Path(attempt.outbox_path) / "use" / "copy.txt").read_text() == "1!"
        assert [a["name"] for a in attempt.actions] == ["make", "use"]
        assert all(a["wall_s"] > 0 for a in attempt.actions)


@pytest.mark.slow
@pytest.mark.needs("ray")
def test_one_job_through_a_local_ray(lab: Lab, tmp_path: Path) -> None:
    import ray

    from countylab.jobs import UnsandboxedRunner
    from countylab.jobs.ray_executor import RayExecutor

    runner = SandboxedRunner if sandbox_available() else UnsandboxedRunner
    who, pid = developer(lab, "dev", "p1")
    svc = service(lab, tmp_path, default_quota=BIG)
    with lab.tx() as s:
        job_id = svc.submit(s, who, pid, _folder(tmp_path)).id
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        d = Dispatcher(
            lab.sessions,
            RayExecutor(runner),
            datasets=lambda s, p: {},
            outbox_root=tmp_path / "outbox",
            poll_interval_s=0.05,
            default_quota=BIG,
        )
        d.start()
        try:
            wait_until(lambda: states(lab, [job_id]) in (["succeeded"], ["failed"], ["killed"]), 25)
        finally:
            d.stop()
    finally:
        ray.shutdown()
    final = states(lab, [job_id])
    with lab.tx() as s:
        attempt = s.query(JobAttempt).filter_by(job_id=job_id).one()
        assert final == ["succeeded"], (attempt.error, attempt.actions)
        assert (Path(attempt.outbox_path) / "use" / "copy.txt").read_text() == "1!"
