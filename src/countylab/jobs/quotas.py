"""Project compute quotas and the usage that counts against them.

A job reserves ``Σ cpu × time_s`` CPU-seconds (and GPU-seconds likewise) while it is pending,
queued or running; once an attempt ends, its metered usage counts instead.  So the budget check
``used in period + reserved by active jobs + this job ≤ quota`` holds at submission and again at
dispatch, and a project can never queue more work than its quota allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from countylab.errors import QuotaExceeded
from countylab.jobs.states import ACTIVE
from countylab.jobs.validate import Quota
from countylab.storage.jobs_models import Job, ProjectQuota, UsageRecord
from countylab.storage.models import utcnow


@dataclass(frozen=True)
class UsageTotals:
    cpu_s: float = 0.0
    wall_s: float = 0.0
    gpu_s: float = 0.0
    max_rss_mb: float = 0.0
    attempts: int = 0


def quota_for(session: Session, project_id: int, default: Quota) -> Quota:
    row = session.get(ProjectQuota, project_id)
    if row is None:
        return default
    return Quota(
        max_cpu=row.max_cpu,
        max_memory_mb=row.max_memory_mb,
        max_time_s=row.max_time_s,
        max_gpu=row.max_gpu,
        cpu_seconds=row.cpu_seconds,
        gpu_seconds=row.gpu_seconds,
        concurrent_jobs=row.concurrent_jobs,
        period_days=row.period_days,
    )


def set_quota(session: Session, project_id: int, quota: Quota, *, by: int | None) -> None:
    row = session.get(ProjectQuota, project_id) or ProjectQuota(project_id=project_id)
    for name in Quota.__dataclass_fields__:
        setattr(row, name, getattr(quota, name))
    row.updated_by = by
    row.updated_at = utcnow()
    session.add(row)
    session.flush()


def usage_since(session: Session, project_id: int, since: datetime | None) -> UsageTotals:
    q = select(
        func.coalesce(func.sum(UsageRecord.cpu_s), 0.0),
        func.coalesce(func.sum(UsageRecord.wall_s), 0.0),
        func.coalesce(func.sum(UsageRecord.gpu_s), 0.0),
        func.coalesce(func.max(UsageRecord.max_rss_mb), 0.0),
        func.count(UsageRecord.id),
    ).where(UsageRecord.project_id == project_id)
    if since is not None:
        q = q.where(UsageRecord.recorded_at >= since)
    cpu, wall, gpu, rss, n = session.execute(q).one()
    return UsageTotals(float(cpu), float(wall), float(gpu), float(rss), int(n))


def reserved(session: Session, project_id: int, *, exclude_job_id: int | None = None) -> tuple[float, float]:
    q = select(
        func.coalesce(func.sum(Job.cpu_seconds_reserved), 0.0),
        func.coalesce(func.sum(Job.gpu_seconds_reserved), 0.0),
    ).where(Job.project_id == project_id, Job.state.in_([s.value for s in ACTIVE]))
    if exclude_job_id is not None:
        q = q.where(Job.id != exclude_job_id)
    cpu, gpu = session.execute(q).one()
    return float(cpu), float(gpu)


def check_budget(
    session: Session,
    project_id: int,
    quota: Quota,
    *,
    cpu_s: float,
    gpu_s: float,
    exclude_job_id: int | None = None,
    now: datetime | None = None,
) -> None:
    """Raise :class:`QuotaExceeded` unless the project's budget still covers this job."""
    since = (now or utcnow()) - timedelta(days=quota.period_days)
    used = usage_since(session, project_id, since)
    held_cpu, held_gpu = reserved(session, project_id, exclude_job_id=exclude_job_id)
    for need, budget, spent, zh, en in (
        (cpu_s, quota.cpu_seconds, used.cpu_s + held_cpu, "CPU 秒", "CPU-seconds"),
        (gpu_s, quota.gpu_seconds, used.gpu_s + held_gpu, "GPU 秒", "GPU-seconds"),
    ):
        if budget is not None and need > 0 and spent + need > budget:
            left = max(0.0, budget - spent)
            raise QuotaExceeded(
                f"项目算力配额不足：需要 {need:.0f} {zh}，{quota.period_days} 天内剩余 {left:.0f}",
                f"project compute quota exhausted: needs {need:.0f} {en}, "
                f"{left:.0f} left in this {quota.period_days}-day period",
                project_id=project_id,
                resource=en,
                needed=need,
                left=left,
                reason="quota",
            )
