"""Recovery after a server restart: a job running when the dispatcher stopped is reconciled by the
next Lab on the same data dir (lost → queued once → run again); a job still queued runs once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from countylab.identity.projects import create_project
from countylab.lab import Lab
from countylab.storage.jobs_models import Job, JobAttempt, UsageRecord
from countylab.storage.models import AuditEvent
from tests.jobs_e2e.e2e_helpers import center, job_folder, principal, wait_state
from tests.support import build_lab, create_user

pytestmark = pytest.mark.usefixtures("bwrap")


def test_jobs_survive_a_restart_and_none_runs_twice(tmp_path: Path) -> None:
    lab = build_lab(tmp_path, job_workers=1)
    create_user(lab, "dev", ["developer"])
    who = principal(lab, "dev")
    with lab.tx() as s:
        pid = create_project(s, who, slug="restart", title="restart").id
    who = principal(lab, "dev")
    slow = job_folder(tmp_path / "code", "slow", "import time\ntime.sleep(1.5)\nprint('slow done')\n")
    quick = job_folder(tmp_path / "code", "quick", "print('quick done')\n")
    first = center(lab)
    first.start()
    with lab.tx() as s:
        a = first.service.submit(s, who, pid, slow).id
        b = first.service.submit(s, who, pid, quick).id
    wait_state(lab, a, {"running"})
    first.stop()  # the server goes away mid-run: nobody records the attempt's outcome
    with lab.tx() as s:
        assert s.get(Job, a).state == "running" and s.get(Job, b).state == "queued"  # type: ignore[union-attr]
    lab.close()

    again = Lab(lab.settings)  # a new process on the same data dir
    center(again).start()
    try:
        assert wait_state(again, a, {"succeeded", "failed"}) == "succeeded"
        assert wait_state(again, b, {"succeeded", "failed"}) == "succeeded"
        with again.tx() as s:
            attempts = {j: [(x.number, x.state) for x in s.execute(
                select(JobAttempt).where(JobAttempt.job_id == j).order_by(JobAttempt.number)).scalars()]
                for j in (a, b)}  # fmt: skip
            usage = {
                j: s.execute(select(UsageRecord).where(UsageRecord.job_id == j)).scalars().all()
                for j in (a, b)
            }
            events = s.execute(select(AuditEvent.action, AuditEvent.target)).all()
        assert attempts[a] == [(1, "lost"), (2, "succeeded")]
        assert attempts[b] == [(1, "succeeded")]  # queued across the restart, ran exactly once
        assert len(usage[b]) == 1 and len(usage[a]) == 1  # the lost attempt reported nothing
        starts = [t for act, t in events if act == "job.start"]
        assert starts.count(f"job:{a}") == 2 and starts.count(f"job:{b}") == 1
        assert (("job.lost", f"job:{a}") in events) and (("job.requeue", f"job:{a}") in events)
        with again.tx() as s:
            assert s.get(Job, a).attempts == 2  # type: ignore[union-attr]
    finally:
        again.close()
