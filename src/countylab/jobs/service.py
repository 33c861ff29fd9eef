"""What the API, CLI and UI call: submit, cancel, retry and read jobs, usage and quotas.

Each method takes the caller's open session (one unit of work) and the acting
:class:`Principal`; it checks the permission, changes state only through the table in
:mod:`countylab.jobs.states`, and writes the audit event in the same transaction.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.projects import authorize_member
from countylab.identity.roles import Permission, Role
from countylab.jobs.codestore import CodeLimits, store_code
from countylab.jobs.dispatch import DatasetPaths
from countylab.jobs.naming import job_name
from countylab.jobs.queue import move, record
from countylab.jobs.quotas import UsageTotals, check_budget, quota_for, set_quota, usage_since
from countylab.jobs.spec import JobSpec, parse_spec
from countylab.jobs.states import RETRYABLE, JobState
from countylab.jobs.validate import Quota, validate_spec
from countylab.storage.jobs_models import Job, JobAttempt
from countylab.storage.models import Dataset, Grant, Project

SPEC_FILE = "countylab.yaml"
Approval = Callable[[Session, int, JobSpec], list[str]]
_STAFF = frozenset({Role.admin, Role.operator})


class JobService:
    """``code_root``: where submitted code is kept (the lab's ``data_dir/jobs/code``).
    ``datasets(session, project_id)``: names → host paths of the project's granted datasets.
    ``notify``: called after a commit that gives the dispatcher work (wakes it at once).
    ``approval(session, project_id, spec)``: the datasets of ``spec`` that may only be read by
    approved code (重要数据); when it names any, the job is held ``pending`` until :meth:`admit`."""

    def __init__(
        self,
        *,
        code_root: Path,
        datasets: DatasetPaths,
        default_quota: Quota = Quota(),
        code_limits: CodeLimits = CodeLimits(),
        notify: Callable[[], None] | None = None,
        approval: Approval | None = None,
    ) -> None:
        self.approval = approval
        self.code_root = code_root
        self.datasets = datasets
        self.default_quota = default_quota
        self.code_limits = code_limits
        self.notify = notify
        #: the lab's clock (``Lab.clock``): a project's authorisation ends by it
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def _wake_after_commit(self, session: Session) -> None:
        if self.notify is not None:
            notify = self.notify
            event.listen(session, "after_commit", lambda _s: notify(), once=True)

    def _load(self, session: Session, principal: Principal, job_id: int, *, lock: bool = False) -> Job:
        q = select(Job).where(Job.id == job_id)
        job = session.execute(q.with_for_update() if lock else q).scalar_one_or_none()
        if job is None:
            raise NotFound(f"作业不存在：{job_id}", f"no such job: {job_id}", job_id=job_id)
        authorize(  # stewards admit and staff cancel through here; running code is _authorize_run's
            principal,
            Permission.project_read,
            project_id=job.project_id,
            oversight=True,
            target=f"job:{job_id}",
        )
        return job

    # -- submission ----------------------------------------------------------------------------
    def submit(
        self,
        session: Session,
        principal: Principal,
        project_id: int,
        code: Path,
        spec: str | bytes | None = None,
        *,
        name: str = "",
        priority: int = 0,
        hold: bool = False,
        source: str = "",
    ) -> Job:
        """Store ``code`` (folder or tar/zip), validate its spec and queue the job.

        ``source``: the submitted folder's or archive's file name, for the job's default name
        (:func:`countylab.jobs.naming.job_name`).

        ``spec``: the YAML text; default: ``countylab.yaml`` inside the code.  ``priority`` other
        than 0 is for admins and operators.  ``hold``: leave the job ``pending`` until
        :meth:`admit` (code review before it may touch 重要数据).
        """
        _authorize_run(session, principal, project_id, f"project:{project_id}")
        project = session.get(Project, project_id)
        if project is None:
            raise NotFound(
                f"项目不存在：{project_id}", f"no such project: {project_id}", project_id=project_id
            )
        if project.status != "active":
            raise Conflict("项目未处于活动状态", "the project is not active", project_id=project_id)
        if priority and not (principal.is_system or principal.roles & _STAFF):
            raise PermissionDenied(
                "只有管理员或运营方可以设置优先级",
                "only admins and operators may set a priority",
                reason="priority",
            )
        stored = store_code(code, self.code_root / str(project_id), limits=self.code_limits)
        try:
            label = (name, source or code.name)
            job = self._admit_new(session, principal, project_id, stored.path, spec, label, priority, hold)
            job.code_sha256, job.code_bytes = stored.sha256, stored.bytes
            session.flush()
        except BaseException:
            shutil.rmtree(stored.path, ignore_errors=True)
            raise
        return job

    def _admit_new(
        self,
        session: Session,
        principal: Principal,
        project_id: int,
        folder: Path,
        spec: str | bytes | None,
        label: tuple[str, str],  # (the name typed, the submitted folder or archive name)
        priority: int,
        hold: bool,
    ) -> Job:
        if spec is None:
            if not (folder / SPEC_FILE).is_file():
                raise ValidationFailed(
                    f"代码中缺少 {SPEC_FILE}",
                    f"{SPEC_FILE} is missing from the code",
                    line=1,
                    field="(file)",
                    reason="missing_spec",
                )
            spec = (folder / SPEC_FILE).read_bytes()
        parsed = parse_spec(spec)
        _enforce(session, principal, project_id, parsed, self.clock())
        quota = quota_for(session, project_id, self.default_quota)
        validate_spec(
            parsed, known_datasets=set(self.datasets(session, project_id)), quota=quota, folder=folder
        )
        check_budget(session, project_id, quota, cpu_s=parsed.cpu_seconds, gpu_s=parsed.gpu_seconds)
        job = Job(
            project_id=project_id,
            submitted_by=principal.user_id,
            name=job_name(parsed, explicit=label[0], source=label[1]),
            state=JobState.pending.value,
            priority=priority,
            spec=parsed.to_dict(),
            spec_yaml=spec.decode() if isinstance(spec, bytes) else spec,
            code_path=str(folder),
            code_sha256="",
            cpu_seconds_reserved=parsed.cpu_seconds,
            gpu_seconds_reserved=parsed.gpu_seconds,
        )
        session.add(job)
        session.flush()
        actor: dict[str, Any] = {"actor": principal.username, "actor_id": principal.user_id}
        needs_review = self.approval(session, project_id, parsed) if self.approval is not None else []
        hold = hold or bool(needs_review)
        record(
            session,
            job,
            "job.submit",
            **actor,
            actions=[a.name for a in parsed.actions],
            priority=priority,
            held_for_review=needs_review,
        )
        if not hold:
            move(session, job, JobState.queued, action="job.queue", **actor)
            self._wake_after_commit(session)
        return job

    def admit(self, session: Session, principal: Principal, job_id: int) -> Job:
        """Release a held (``pending``) job into the queue: a steward approved its code."""
        job = self._load(session, principal, job_id, lock=True)
        authorize(principal, Permission.grant_manage, target=f"job:{job_id}")
        if move(
            session,
            job,
            JobState.queued,
            actor=principal.username,
            actor_id=principal.user_id,
            action="job.admit",
        ):
            self._wake_after_commit(session)
        return job

    # -- changing a job ------------------------------------------------------------------------
    def cancel(self, session: Session, principal: Principal, job_id: int) -> Job:
        """Queued or pending: cancelled now.  Running: the worker is asked to stop; the job turns
        ``cancelled`` when it has.  Already cancelled: nothing happens."""
        job = self._load(session, principal, job_id, lock=True)
        if not (principal.roles & _STAFF):
            _authorize_run(session, principal, job.project_id, f"job:{job_id}")
        actor: dict[str, Any] = {"actor": principal.username, "actor_id": principal.user_id}
        if job.state == JobState.running.value:
            if not job.cancel_requested:
                job.cancel_requested = True
                session.flush()
                record(session, job, "job.cancel_request", **actor)
                self._wake_after_commit(session)
            return job
        move(session, job, JobState.cancelled, action="job.cancel", **actor)
        return job

    def retry(self, session: Session, principal: Principal, job_id: int) -> Job:
        """A failed, killed or lost job goes back to the queue; its next claim is a new attempt."""
        job = self._load(session, principal, job_id, lock=True)
        _authorize_run(session, principal, job.project_id, f"job:{job_id}")
        if JobState(job.state) in RETRYABLE:
            quota = quota_for(session, job.project_id, self.default_quota)
            check_budget(
                session,
                job.project_id,
                quota,
                cpu_s=job.cpu_seconds_reserved,
                gpu_s=job.gpu_seconds_reserved,
                exclude_job_id=job.id,
            )
            job.cancel_requested, job.error, job.worker_id = False, "", None
        if move(
            session,
            job,
            JobState.queued,
            actor=principal.username,
            actor_id=principal.user_id,
            action="job.retry",
            after_attempt=job.attempts,
        ):
            self._wake_after_commit(session)
        return job

    # -- reading -------------------------------------------------------------------------------
    def get(self, session: Session, principal: Principal, job_id: int) -> Job:
        return self._load(session, principal, job_id)

    def spec_of(self, job: Job) -> JobSpec:
        return JobSpec.from_dict(job.spec)

    def attempts(self, session: Session, principal: Principal, job_id: int) -> list[JobAttempt]:
        self._load(session, principal, job_id)
        q = select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.number)
        return list(session.execute(q).scalars())

    def list_for_project(
        self,
        session: Session,
        principal: Principal,
        project_id: int,
        *,
        state: JobState | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        _authorize_read(principal, project_id)
        q = select(Job).where(Job.project_id == project_id)
        if state is not None:
            q = q.where(Job.state == state.value)
        q = q.order_by(Job.id.desc()).limit(min(limit, 1000)).offset(offset)
        return list(session.execute(q).scalars())

    def usage_for_project(
        self, session: Session, principal: Principal, project_id: int, *, since: datetime | None = None
    ) -> UsageTotals:
        _authorize_read(principal, project_id)
        return usage_since(session, project_id, since)

    # -- quotas ----------------------------------------------------------------------------------
    def quota(self, session: Session, principal: Principal, project_id: int) -> Quota:
        _authorize_read(principal, project_id)
        return quota_for(session, project_id, self.default_quota)

    def set_quota(self, session: Session, principal: Principal, project_id: int, quota: Quota) -> None:
        """Stewards and platform admins set a project's compute quota (算力配额)."""
        authorize(principal, Permission.job_quota, target=f"project:{project_id}")
        if session.get(Project, project_id) is None:
            raise NotFound(
                f"项目不存在：{project_id}", f"no such project: {project_id}", project_id=project_id
            )
        set_quota(session, project_id, quota, by=principal.user_id)
        audit.append(
            session,
            actor_id=principal.user_id,
            actor=principal.username,
            action="quota.set",
            target=f"project:{project_id}",
            details=dict(quota.__dict__),
        )


def _authorize_read(principal: Principal, project_id: int) -> None:
    """Reading a project's jobs, usage and quota: its members, and oversight roles watching it."""
    target = f"project:{project_id}"
    authorize(principal, Permission.project_read, project_id=project_id, oversight=True, target=target)


def _authorize_run(session: Session, principal: Principal, project_id: int, target: str) -> None:
    """Running code on a project's data is for its members only: oversight roles (stewards,
    checkers) may read a project's jobs but never run code in it, so no one both submits and
    reviews.  The system and the console operator pass."""
    authorize_member(session, principal, Permission.job_submit, project_id, target)


def _enforce(session: Session, principal: Principal, project_id: int, parsed: JobSpec, now: datetime) -> None:
    """The project's authorisation is in force, the submitter accredited, and every named dataset
    granted for sandbox jobs.  A dataset approved for some columns only is bound as a folder
    holding just those columns (:func:`countylab.jobs.granted.bind_projection`)."""
    from countylab.operations import enforcement
    from countylab.operations.terms import Channel

    names = {n for a in parsed.actions for n in a.datasets}
    rows = session.execute(
        select(Dataset.id)
        .join(Grant, Grant.dataset_id == Dataset.id)
        .where(Grant.project_id == project_id, Dataset.name.in_(names or {""}))
    ).all()
    # raises unless in force and granted for jobs; approved columns are honoured by the bind folder
    enforcement.check(
        session, project_id, Channel.sandbox_job, [r.id for r in rows], now=now, user_id=principal.user_id
    )
