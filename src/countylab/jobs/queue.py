"""The persistent queue: claim, finish, reconcile — all in the metadata database.

Claiming is a compare-and-set: ``UPDATE jobs SET state='running' … WHERE id=? AND
state='queued'``; only the worker whose UPDATE changed the row owns the attempt, so two
workers (threads, processes or servers) can never run the same job.  Finishing is fenced the
same way on ``(state='running', worker_id, attempts)``: a worker that was declared lost and
comes back late cannot overwrite what happened since, though its usage is still metered.

Order: highest ``priority`` first; among equals, fair share — the project with the fewest
running jobs, then the least CPU used in the last 24 hours, then the oldest job.  Every state
change writes an audit event in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from countylab import audit
from countylab.errors import CountylabError
from countylab.jobs.attempt import AttemptOutcome
from countylab.jobs.quotas import check_budget, quota_for
from countylab.jobs.states import JobState, check_transition
from countylab.jobs.validate import Quota
from countylab.notify.hooks import job_notice
from countylab.storage.jobs_models import Job, JobAttempt, UsageRecord
from countylab.storage.models import utcnow

FAIR_SHARE_WINDOW = timedelta(hours=24)
MAX_LOST_REQUEUES = 1
SCAN_LIMIT = 200

Resolver = Callable[[Session, Job], dict[str, Path]]


@dataclass(frozen=True)
class Claim:
    job: Job
    attempt: JobAttempt
    datasets: dict[str, Path]


def record(
    session: Session, job: Job, action: str, *, actor: str, actor_id: int | None = None, **details: Any
) -> None:
    audit.append(
        session,
        actor_id=actor_id,
        actor=actor,
        action=action,
        target=f"job:{job.id}",
        details={"project_id": job.project_id, "state": job.state, **details},
    )


def move(
    session: Session,
    job: Job,
    target: JobState,
    *,
    actor: str,
    actor_id: int | None = None,
    action: str,
    now: datetime | None = None,
    **details: Any,
) -> bool:
    """Apply one transition of the table (no-op when already there) with its audit event."""
    if not check_transition(job.state, target):
        return False
    now = now or utcnow()
    job.state = target.value
    if target is JobState.queued:
        job.queued_at = now
    if target in (JobState.succeeded, JobState.failed, JobState.killed, JobState.cancelled):
        job.finished_at = now
    session.flush()
    record(session, job, action, actor=actor, actor_id=actor_id, **details)
    job_notice(session, job, target.value)
    return True


def _fair_order(session: Session, candidates: list[Job], now: datetime) -> list[Job]:
    projects = {j.project_id for j in candidates}
    running = dict(
        session.execute(
            select(Job.project_id, func.count(Job.id))
            .where(Job.state == JobState.running.value, Job.project_id.in_(projects))
            .group_by(Job.project_id)
        ).all()
    )
    recent = dict(
        session.execute(
            select(UsageRecord.project_id, func.sum(UsageRecord.cpu_s))
            .where(UsageRecord.recorded_at >= now - FAIR_SHARE_WINDOW, UsageRecord.project_id.in_(projects))
            .group_by(UsageRecord.project_id)
        ).all()
    )
    top = max(j.priority for j in candidates)
    best = [j for j in candidates if j.priority == top]
    order = sorted(
        best,
        key=lambda j: (
            running.get(j.project_id, 0),
            float(recent.get(j.project_id) or 0.0),
            j.queued_at or now,
            j.id,
        ),
    )
    return order + [j for j in candidates if j.priority != top]


def _eligible(session: Session, default_quota: Quota) -> tuple[list[Job], dict[int, Quota]]:
    candidates = list(
        session.execute(
            select(Job)
            .where(Job.state == JobState.queued.value)
            .order_by(Job.priority.desc(), Job.queued_at, Job.id)
            .limit(SCAN_LIMIT)
        ).scalars()
    )
    quotas = {pid: quota_for(session, pid, default_quota) for pid in {j.project_id for j in candidates}}
    running: dict[int, int] = defaultdict(int)
    for pid, n in session.execute(
        select(Job.project_id, func.count(Job.id))
        .where(Job.state == JobState.running.value)
        .group_by(Job.project_id)
    ).all():
        running[pid] = n
    return [j for j in candidates if running[j.project_id] < quotas[j.project_id].concurrent_jobs], quotas


def claim_next(
    session: Session,
    *,
    worker_id: str,
    outbox_root: Path,
    default_quota: Quota,
    resolve_datasets: Resolver,
    now: datetime | None = None,
) -> Claim | None:
    """Claim the next job for ``worker_id`` and open its attempt; None when nothing may run."""
    now = now or utcnow()
    actor = f"worker:{worker_id}"
    eligible, quotas = _eligible(session, default_quota)
    while eligible:
        for job in _fair_order(session, eligible, now):
            eligible.remove(job)
            try:  # refusals at dispatch: the budget shrank, or a grant was revoked
                check_budget(
                    session,
                    job.project_id,
                    quotas[job.project_id],
                    cpu_s=job.cpu_seconds_reserved,
                    gpu_s=job.gpu_seconds_reserved,
                    exclude_job_id=job.id,
                    now=now,
                )
                datasets = resolve_datasets(session, job)
            except CountylabError as exc:
                session.refresh(job, with_for_update=True)  # PostgreSQL: lock, then re-check
                if job.state != JobState.queued.value:
                    break
                job.error = exc.message_en
                move(
                    session, job, JobState.failed, actor=actor, action="job.refuse", now=now, reason=exc.code
                )
                break
            number = job.attempts + 1
            result = session.execute(
                update(Job)
                .where(Job.id == job.id, Job.state == JobState.queued.value)
                .values(
                    state=JobState.running.value,
                    worker_id=worker_id,
                    attempts=number,
                    started_at=now,
                    heartbeat_at=now,
                    cancel_requested=False,
                    error="",
                )
                .execution_options(synchronize_session=False)
            )
            if not isinstance(result, CursorResult) or result.rowcount != 1:
                break  # another worker took it: re-rank what is left
            session.expire(job)
            outbox = outbox_root / str(job.project_id) / str(job.id) / f"attempt-{number}"
            attempt = JobAttempt(
                job_id=job.id,
                number=number,
                worker_id=worker_id,
                state=JobState.running.value,
                outbox_path=str(outbox),
                started_at=now,
            )
            session.add(attempt)
            session.flush()
            record(session, job, "job.start", actor=actor, attempt=number, worker=worker_id)
            return Claim(job, attempt, datasets)
    return None


def heartbeat(
    session: Session, worker_id: str, job_ids: Collection[int], now: datetime | None = None
) -> None:
    if job_ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(list(job_ids)), Job.worker_id == worker_id, Job.state == JobState.running.value)
            .values(heartbeat_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )


def cancel_requests(session: Session, worker_id: str) -> list[int]:
    """Ids of this worker's running jobs that a person asked to cancel."""
    q = select(Job.id).where(
        Job.worker_id == worker_id, Job.state == JobState.running.value, Job.cancel_requested.is_(True)
    )
    return list(session.execute(q).scalars())


def record_outcome(
    session: Session, *, worker_id: str, outcome: AttemptOutcome, now: datetime | None = None
) -> Job:
    """Meter the attempt and, if this worker still owns the job, move it to its final state."""
    now = now or utcnow()
    actor = f"worker:{worker_id}"
    # locked (PostgreSQL) so a reconcile elsewhere cannot declare it lost between our check and write
    job = session.execute(select(Job).where(Job.id == outcome.job_id).with_for_update()).scalar_one()
    session.refresh(job)
    attempt = session.execute(
        select(JobAttempt).where(JobAttempt.job_id == job.id, JobAttempt.number == outcome.attempt)
    ).scalar_one()
    final = outcome.state
    if final is JobState.cancelled and not job.cancel_requested:
        final = JobState.lost  # stopped by the lab (shutdown), not by a person
    attempt.state, attempt.finished_at, attempt.error = final.value, now, outcome.error
    attempt.exit_code = outcome.exit_code
    attempt.actions = [a.to_dict() for a in outcome.actions]
    usage = UsageRecord(
        project_id=job.project_id,
        job_id=job.id,
        attempt_id=attempt.id,
        cpu_s=outcome.cpu_s,
        wall_s=outcome.wall_s,
        max_rss_mb=outcome.max_rss_mb,
        gpu_s=outcome.gpu_s,
        recorded_at=now,
    )
    session.add(usage)
    session.flush()
    owned = (
        job.state == JobState.running.value and job.worker_id == worker_id and job.attempts == outcome.attempt
    )
    metering: dict[str, Any] = {"cpu_s": outcome.cpu_s, "wall_s": outcome.wall_s, "gpu_s": outcome.gpu_s}
    if not owned:
        record(session, job, "job.late_result", actor=actor, attempt=outcome.attempt, **metering)
        return job
    if final is JobState.lost:
        _lose(session, job, actor=actor, now=now, why="stopped by the lab")
        return job
    job.error = outcome.error
    move(
        session, job, final, actor=actor, action="job.finish", now=now, attempt=outcome.attempt,
        security=outcome.security, **metering,
    )  # fmt: skip
    return job


def _lose(session: Session, job: Job, *, actor: str, now: datetime, why: str) -> None:
    move(session, job, JobState.lost, actor=actor, action="job.lost", now=now, attempt=job.attempts, why=why)
    if job.lost_count < MAX_LOST_REQUEUES:
        job.lost_count += 1
        job.worker_id = None
        move(session, job, JobState.queued, actor=actor, action="job.requeue", now=now, attempt=job.attempts)
    else:
        job.error = f"lost {job.lost_count + 1} times ({why}); not requeued again"
        move(session, job, JobState.failed, actor=actor, action="job.fail", now=now, reason="lost")


def reconcile(
    session: Session,
    *,
    actor: str,
    live_workers: Collection[str] | None = None,
    only_workers: Collection[str] | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Declare lost the running jobs whose worker is gone; requeue each once, then fail it.

    ``live_workers``: the workers known alive — this process and every server whose heartbeat
    is fresh (:func:`countylab.storage.leader.live_servers`).  A job claimed by any of them is
    not touched: it is running there.  ``None`` checks nothing (declares nothing lost).
    ``only_workers``: consider only jobs of these workers (the servers known to have stopped
    beating), so a periodic check never judges a worker that never registered a heartbeat.

    Each job is re-read under a row lock (PostgreSQL; SQLite's writer lock serialises anyway)
    before it is declared lost, so two servers reconciling at once lose it once, and a late
    result being recorded at the same moment is either before (it wins) or after (it is late).
    Returns the ids of the jobs declared lost.
    """
    now = now or utcnow()
    lost: list[int] = []
    if live_workers is None:
        return lost
    live = set(live_workers)
    running = select(Job.id).where(Job.state == JobState.running.value)
    for job_id in list(session.execute(running).scalars()):
        job = session.execute(select(Job).where(Job.id == job_id).with_for_update()).scalar_one()
        session.refresh(job)  # the row as committed now that we hold its lock
        if job.state != JobState.running.value or job.worker_id in live:
            continue
        if only_workers is not None and job.worker_id not in only_workers:
            continue
        attempt = session.execute(
            select(JobAttempt).where(JobAttempt.job_id == job.id, JobAttempt.number == job.attempts)
        ).scalar_one_or_none()
        if attempt is not None:
            attempt.state, attempt.finished_at = JobState.lost.value, now
        _lose(session, job, actor=actor, now=now, why="worker gone")
        lost.append(job.id)
    return lost
