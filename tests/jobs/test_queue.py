"""The queue against a real migrated SQLite lab: claims, order, quotas, metering, cancel, recovery."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from countylab.audit import verify
from countylab.errors import Conflict, PermissionDenied, QuotaExceeded
from countylab.identity.access import SYSTEM
from countylab.jobs import JobState, LocalExecutor, Quota
from countylab.jobs.queue import claim_next
from countylab.lab import Lab
from countylab.storage.jobs_models import Job, JobAttempt, UsageRecord
from tests.jobs.jobs_helpers import (
    BIG,
    FakeRunner,
    code_folder,
    developer,
    dispatcher,
    no_datasets,
    running,
    service,
    states,
    submit_many,
    wait_until,
)
from tests.support import audit_actions


def _claim(lab: Lab, tmp: Path, worker: str = "w1") -> int | None:
    with lab.tx() as s:
        c = claim_next(
            s, worker_id=worker, outbox_root=tmp / "ob", default_quota=BIG, resolve_datasets=lambda s, j: {}
        )
        return c.job.id if c else None


def test_submit_stores_code_and_queues_with_audit(lab: Lab, tmp_path: Path) -> None:
    who, pid = developer(lab, "dev", "p1")
    svc = service(lab, tmp_path)
    with lab.tx() as s:
        job = svc.submit(s, who, pid, code_folder(tmp_path))
        assert job.state == "queued" and job.attempts == 0 and len(job.code_sha256) == 64
        assert (Path(job.code_path) / "job.py").read_text() == "print('hi')\n"
        assert job.cpu_seconds_reserved == 60.0
    assert [a for a, *_ in audit_actions(lab)][-2:] == ["job.submit", "job.queue"]
    outsider, _ = developer(lab, "other", "p2")
    with lab.tx() as s, pytest.raises(PermissionDenied):
        svc.submit(s, outsider, pid, code_folder(tmp_path))


@pytest.mark.slow
def test_claim_race_two_dispatchers_200_jobs_each_runs_once(lab: Lab, tmp_path: Path) -> None:
    who, pid = developer(lab, "dev", "p1")
    svc = service(lab, tmp_path, default_quota=BIG)
    ids = submit_many(lab, svc, who, pid, code_folder(tmp_path), 200)
    # Each dispatcher runs at most 2 jobs at once; the first runs wait until 3 are running, so
    # both dispatchers are in the race however the scheduler of a loaded machine orders threads.
    gate = threading.Event()
    runner = FakeRunner(block=gate)
    a, b = (
        dispatcher(lab, tmp_path, runner, default_quota=BIG),
        dispatcher(lab, tmp_path, runner, default_quota=BIG),
    )
    with running(a), running(b):
        wait_until(lambda: len(runner.runs) >= 3, timeout=60)
        gate.set()
        wait_until(lambda: states(lab, ids).count("succeeded") == 200, timeout=60)
    assert len(runner.runs) == 200 and set(runner.runs.values()) == {1}
    with lab.tx() as s:
        workers = {j.worker_id for j in s.execute(select(Job)).scalars()}
        assert workers == {a.worker_id, b.worker_id}  # both really took part
        assert s.query(JobAttempt).count() == 200 and s.query(UsageRecord).count() == 200
        assert verify(s).ok


def test_claim_is_compare_and_set(lab: Lab, tmp_path: Path) -> None:
    """Threads hammering claim_next directly: every job is claimed by exactly one of them."""
    who, pid = developer(lab, "dev", "p1")
    ids = submit_many(lab, service(lab, tmp_path, default_quota=BIG), who, pid, code_folder(tmp_path), 40)
    got: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job_id := _claim(lab, tmp_path, name)) is not None:
            with lock:
                got.append(job_id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(ids)


def test_priority_then_fair_share(lab: Lab, tmp_path: Path) -> None:
    heavy, p_heavy = developer(lab, "heavy", "heavy")
    light, p_light = developer(lab, "light", "light")
    svc = service(lab, tmp_path, default_quota=BIG)
    folder = code_folder(tmp_path)
    with lab.tx() as s:  # the heavy project has used CPU recently
        first = svc.submit(s, heavy, p_heavy, folder).id
    assert _claim(lab, tmp_path) == first
    with lab.tx() as s:
        s.add(UsageRecord(project_id=p_heavy, job_id=first, attempt_id=1, cpu_s=500.0))
        s.get(Job, first).state = "succeeded"  # type: ignore[union-attr]
    h = submit_many(lab, svc, heavy, p_heavy, folder, 2)
    lt = submit_many(lab, svc, light, p_light, folder, 2)
    with lab.tx() as s:
        urgent = svc.submit(s, SYSTEM, p_heavy, folder, priority=5).id
    order = [_claim(lab, tmp_path) for _ in range(5)]
    # priority first; then the light project (no recent usage); with one running each, recent
    # usage breaks the tie, so light again; then heavy in submission order
    assert order == [urgent, lt[0], lt[1], h[0], h[1]]
    # fewest running beats usage: light (2 running) now waits behind heavy (0 running)
    with lab.tx() as s:
        for job_id in (urgent, h[0], h[1]):
            s.get(Job, job_id).state = "succeeded"  # type: ignore[union-attr]
    h2 = submit_many(lab, svc, heavy, p_heavy, folder, 1)
    lt2 = submit_many(lab, svc, light, p_light, folder, 1)
    assert [_claim(lab, tmp_path), _claim(lab, tmp_path)] == [h2[0], lt2[0]]
    with lab.tx() as s, pytest.raises(PermissionDenied):
        svc.submit(s, light, p_light, folder, priority=9)


def test_concurrent_jobs_quota_at_dispatch(lab: Lab, tmp_path: Path) -> None:
    who, pid = developer(lab, "dev", "p1")
    svc = service(lab, tmp_path, default_quota=Quota(cpu_seconds=None, concurrent_jobs=2))
    submit_many(lab, svc, who, pid, code_folder(tmp_path), 3)
    with lab.tx() as s:
        svc.set_quota(s, SYSTEM, pid, Quota(cpu_seconds=None, concurrent_jobs=2))
    assert _claim(lab, tmp_path) is not None and _claim(lab, tmp_path) is not None
    assert _claim(lab, tmp_path) is None  # third waits while two run


def test_cpu_budget_refused_at_submission_and_dispatch(lab: Lab, tmp_path: Path) -> None:
    who, pid = developer(lab, "dev", "p1")
    svc = service(lab, tmp_path, default_quota=Quota(cpu_seconds=150))
    folder = code_folder(tmp_path)
    submit_many(lab, svc, who, pid, folder, 2)  # 2 × 60 CPU-s reserved
    with lab.tx() as s, pytest.raises(QuotaExceeded) as info:
        svc.submit(s, who, pid, folder)
    assert info.value.details["reason"] == "quota" and info.value.details["left"] == 30
    with lab.tx() as s:  # an admin lowers the budget: the queued jobs are refused at dispatch
        svc.set_quota(s, SYSTEM, pid, Quota(cpu_seconds=100))
    assert _claim(lab, tmp_path) is not None  # the first no longer fits beside the second; the second does
    with lab.tx() as s:
        refused = s.execute(select(Job).where(Job.state == "failed")).scalars().all()
        assert len(refused) == 1 and "quota" in refused[0].error
    assert "job.refuse" in [a for a, *_ in audit_actions(lab)]


def test_metering_records_usage(lab: Lab, tmp_path: Path) -> None:
    who, pid = developer(lab, "dev", "p1")
    svc = service(lab, tmp_path)
    ids = submit_many(lab, svc, who, pid, code_folder(tmp_path), 3)
    with running(dispatcher(lab, tmp_path, FakeRunner(cpu_s=1.5, sleep_s=0.02))):
        wait_until(lambda: states(lab, ids) == ["succeeded"] * 3)
    with lab.tx() as s:
        usage = svc.usage_for_project(s, who, pid)
        assert usage.attempts == 3 and usage.cpu_s == pytest.approx(4.5) and usage.max_rss_mb == 42.0
        assert usage.wall_s >= 0.06
        attempt = s.execute(select(JobAttempt).where(JobAttempt.job_id == ids[0])).scalar_one()
        assert attempt.state == "succeeded" and attempt.actions[0]["exit_code"] == 0
    assert audit_actions(lab).count(("job.finish", audit_actions(lab)[-1][1], "ok")) == 3


def test_failure_missing_output_and_retry(lab: Lab, tmp_path: Path) -> None:
    who, pid = developer(lab, "dev", "p1")
    svc = service(lab, tmp_path)
    [job_id] = submit_many(lab, svc, who, pid, code_folder(tmp_path), 1)
    runner = FakeRunner(write_outputs=False)
    d = dispatcher(lab, tmp_path, runner)
    with running(d):
        wait_until(lambda: states(lab, [job_id]) == ["failed"])
        with lab.tx() as s:
            assert "missing outputs: out.txt" in s.get(Job, job_id).error  # type: ignore[union-attr]
        runner.write_outputs = True
        with lab.tx() as s:
            svc.retry(s, who, job_id)
        d.wake()
        wait_until(lambda: states(lab, [job_id]) == ["succeeded"])
    with lab.tx() as s:
        assert [a.state for a in svc.attempts(s, who, job_id)] == ["failed", "succeeded"]
        with pytest.raises(Conflict):
            svc.retry(s, who, job_id)  # succeeded is final


def test_cancel_queued_job(lab: Lab, tmp_path: Path) -> None:
    who, pid = developer(lab, "dev", "p1")
    svc = service(lab, tmp_path)
    [job_id] = submit_many(lab, svc, who, pid, code_folder(tmp_path), 1)
    with lab.tx() as s:
        assert svc.cancel(s, who, job_id).state == "cancelled"
        assert svc.cancel(s, who, job_id).state == "cancelled"  # idempotent
    assert _claim(lab, tmp_path) is None
    assert [a for a, *_ in audit_actions(lab)].count("job.cancel") == 1


def test_cancel_running_job(lab: Lab, tmp_path: Path) -> None:
    who, pid = developer(lab, "dev", "p1")
    svc = service(lab, tmp_path)
    [job_id] = submit_many(lab, svc, who, pid, code_folder(tmp_path), 1)
    runner = FakeRunner(block=threading.Event())  # never finishes by itself
    d = dispatcher(lab, tmp_path, runner)
    svc.notify = d.wake
    with running(d):
        assert runner.started.wait(10)
        with lab.tx() as s:
            assert svc.cancel(s, who, job_id).state == "running"  # requested; the worker stops it
        wait_until(lambda: states(lab, [job_id]) == ["cancelled"])
    actions = [a for a, *_ in audit_actions(lab)]
    assert actions[-2:] == ["job.cancel_request", "job.finish"]


def test_recovery_after_restart(lab: Lab, tmp_path: Path) -> None:
    who, pid = developer(lab, "dev", "p1")
    svc = service(lab, tmp_path)
    ids = submit_many(lab, svc, who, pid, code_folder(tmp_path), 3)
    # the old server claimed two jobs, then died without reporting
    old_a, old_b = _claim(lab, tmp_path, "old"), _claim(lab, tmp_path, "old")
    with lab.tx() as s:  # one of them was already lost once before
        s.get(Job, old_b).lost_count = 1  # type: ignore[union-attr]
    runner = FakeRunner()
    d = dispatcher(lab, tmp_path, runner)
    assert sorted(d.recover()) == sorted([old_a, old_b])
    assert states(lab, [old_a, old_b]) == ["queued", "failed"]
    with running(d):
        wait_until(lambda: states(lab, ids).count("succeeded") == 2)
    with lab.tx() as s:
        attempts = s.execute(select(JobAttempt).where(JobAttempt.job_id == old_a)).scalars().all()
        assert [a.state for a in attempts] == ["lost", "succeeded"]
    assert sum(runner.runs.values()) == 2  # the queued job and the requeued one, each once
    assert {"job.lost", "job.requeue", "job.fail"} <= {a for a, *_ in audit_actions(lab)}


def test_late_result_from_a_lost_worker_is_fenced(lab: Lab, tmp_path: Path) -> None:
    from countylab.jobs import AttemptOutcome
    from countylab.jobs.queue import reconcile, record_outcome

    who, pid = developer(lab, "dev", "p1")
    [job_id] = submit_many(lab, service(lab, tmp_path), who, pid, code_folder(tmp_path), 1)
    _claim(lab, tmp_path, "old")
    with lab.tx() as s:
        reconcile(s, actor="test", live_workers={"new"})
    _claim(lab, tmp_path, "new")
    with lab.tx() as s:
        record_outcome(s, worker_id="old", outcome=AttemptOutcome(job_id, 1, JobState.succeeded))
        job = s.get(Job, job_id)
        assert job is not None and job.state == "running" and job.worker_id == "new" and job.attempts == 2
        assert s.query(UsageRecord).count() == 1  # still metered
    assert audit_actions(lab)[-1][0] == "job.late_result"


def test_executor_runs_gpu_jobs_with_assigned_devices(tmp_path: Path) -> None:
    from countylab.jobs import AttemptTicket, parse_spec

    spec = parse_spec(
        "actions:\n  a:\n    run: python a.py\n    outputs: [{path: out.txt, kind: log}]\n"
        "    resources: {gpu: 1}\n"
    )
    seen: list[list[str]] = []

    class Recorder(FakeRunner):
        def run(self, spec, cancel):  # type: ignore[no-untyped-def]
            seen.append(spec.gpu_devices)
            return super().run(spec, cancel)

    ex = LocalExecutor(Recorder(), workers=2, gpus=["1"])
    for n in range(2):
        ex.submit(AttemptTicket(n, 1, 1, spec.actions, tmp_path, tmp_path / f"ob{n}", {}))
    wait_until(lambda: len(seen) == 2)
    ex.shutdown()
    assert seen == [["1"], ["1"]]
    assert no_datasets is not None
