"""The compute center (算力中心) of one lab: the job service, its dispatcher and the outbox.

Built by :class:`~countylab.lab.Lab` (``lab.jobs``) for every lab; construction is
cheap (no threads, no sandbox probe).  :meth:`JobsCenter.start` — called with the lab's other
background work by ``countylab serve``/``demo`` — chooses the runner, builds the executor the
``executor`` setting names, reconciles jobs a previous process left ``running`` and starts the
dispatcher.

**Never real data unsandboxed.**  When bubblewrap does not work on this host the center runs
with :class:`RefusingRunner`: every attempt fails at once with a clear error (and the lab log
says so at start), instead of falling back to a plain subprocess.  The plain-subprocess
fallback exists only in ``countylab run``, on dummy data.

**Outbox layout** (what the airlock builds release requests on)::

    <data_dir>/jobs/outbox/<project_id>/<job_id>/attempt-<n>/<action>/
        <declared outputs…>            files the action wrote under /outbox
        logs/stdout.txt, logs/stderr.txt   the action's streams (outputs like any other)

:meth:`JobsCenter.outbox_files` lists the regular files of a job's latest attempt.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.errors import Conflict
from countylab.identity.access import Principal
from countylab.identity.roles import OVERSIGHT_ROLES
from countylab.jobs.attempt import SandboxRunner
from countylab.jobs.dispatch import Dispatcher
from countylab.jobs.granted import GrantedDatasets, allowed_datasets, needs_approved_code
from countylab.jobs.logscan import ScannedLog, scan_log_file
from countylab.jobs.service import JobService
from countylab.jobs.spec import JobSpec
from countylab.jobs.states import JobState
from countylab.sandbox.spec import SandboxResult, SandboxSpec
from countylab.storage.catalog_models import DatasetColumn
from countylab.storage.jobs_models import Job, JobAttempt

if TYPE_CHECKING:
    from countylab.airlock.leakage import SourceIndex
    from countylab.lab import Lab

log = logging.getLogger(__name__)


class RefusingRunner:
    """Stands in for the sandbox where bubblewrap is missing: real data is never run unsandboxed."""

    def run(self, spec: SandboxSpec, cancel: threading.Event) -> SandboxResult:
        raise Conflict(
            "本机没有可用的 bubblewrap 沙箱，拒绝在真实数据上运行作业"
            "（请安装 bubblewrap 并允许非特权用户命名空间）",
            "no working bubblewrap sandbox on this server: refusing to run jobs on real data "
            "(install bubblewrap and allow unprivileged user namespaces)",
            reason="no_sandbox",
        )


class JobsCenter:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        root = lab.settings.data_dir / "jobs"
        self.code_root = root / "code"
        self.outbox_root = root / "outbox"
        self.bind_root = root / "bind"
        self.datasets = GrantedDatasets(lab.ingestion, self.bind_root)
        self.service = JobService(
            code_root=self.code_root, datasets=self.datasets, notify=self.wake, approval=self._approval
        )
        self.service.clock = lambda: lab.clock()
        self.dispatcher: Dispatcher | None = None
        self.runner_kind = "not started"  # sandboxed | refusing (no bubblewrap) | ray
        self._excerpts: OrderedDict[tuple[int, int, str], list[ScannedLog]] = OrderedDict()
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    def _runner(self) -> SandboxRunner:
        from countylab.jobs.attempt import SandboxedRunner
        from countylab.sandbox import sandbox_available
        from countylab.sandbox.identity import launch_mode

        if sandbox_available() and launch_mode() != "userns":
            self.runner_kind = "sandboxed"
            return SandboxedRunner(**self._sandbox_settings())
        if sandbox_available():  # jobs would run as the lab's own user: never on real data
            log.error(
                "the lab runs as an unprivileged user without a subordinate uid range (/etc/subuid, "
                "newuidmap): jobs would run as the lab's own user, so they will FAIL; see "
                "docs/how-to/county-server.md / 实验室用户没有从属 uid 范围，作业将被拒绝运行"
            )
        else:
            log.error(
                "bubblewrap is not available: sandbox jobs will FAIL rather than run real data unsandboxed / "
                "本机无可用 bubblewrap：作业将被拒绝运行，绝不在无沙箱时处理真实数据"
            )
        self.runner_kind = "refusing"
        return RefusingRunner()

    def _sandbox_settings(self) -> dict[str, Any]:
        """The sandbox identity and outbox quotas from the lab's settings."""
        st = self.lab.settings
        return {
            "sandbox_user": st.sandbox_user,
            "outbox_mb": st.job_outbox_mb,
            "outbox_files": st.job_outbox_files,
        }

    def build_dispatcher(self, *, poll_interval_s: float = 0.5) -> Dispatcher:
        settings = self.lab.settings
        if settings.executor == "ray":
            import ray

            from countylab.jobs.attempt import SandboxedRunner
            from countylab.jobs.ray_executor import RayExecutor

            if not ray.is_initialized():
                ray.init(address="auto")
            self.runner_kind = "ray"
            runner = functools.partial(SandboxedRunner, **self._sandbox_settings())
            executor: object = RayExecutor(runner, max_in_flight=settings.job_workers)
        else:
            from countylab.jobs.executors import LocalExecutor

            executor = LocalExecutor(self._runner(), workers=settings.job_workers)
        return Dispatcher(
            self.lab.sessions,
            executor,  # type: ignore[arg-type]
            datasets=self.datasets,
            outbox_root=self.outbox_root,
            poll_interval_s=poll_interval_s,
            worker_id=self.lab.server.server_id,  # the jobs it claims are this server's (lab_servers)
            server_expire_s=self.lab.server.expire_s,
        )

    def start(self) -> None:
        if self.dispatcher is not None:
            return
        from countylab.sandbox.identity import protect_data_dir
        from countylab.sandbox.outbox import unmount_stale

        protect_data_dir(self.lab.settings.data_dir)  # 0700: the sandbox user reaches nothing below
        for point in unmount_stale(self.outbox_root):
            log.warning("detached an outbox tmpfs left by a previous process: %s", point)
        dispatcher = self.build_dispatcher()
        lost = dispatcher.recover()  # only jobs of servers that stopped beating (or of our own past)
        if lost:
            log.warning("reconciled %d job(s) left running by stopped servers: %s", len(lost), lost)
        self.dispatcher = dispatcher
        dispatcher.start()

    def stop(self, *, release: bool = False) -> None:
        """Stop dispatching; ``release`` hands this process's running jobs back to the queue
        (the process lives on without its leadership, see :meth:`Dispatcher.stop`)."""
        dispatcher, self.dispatcher = self.dispatcher, None
        if dispatcher is not None:
            dispatcher.stop(release=release)

    def wake(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def _approval(self, session: Session, project_id: int, spec: JobSpec) -> list[str]:
        return needs_approved_code(session, project_id, {d for a in spec.actions for d in a.datasets})

    # -- reading -----------------------------------------------------------------------------
    def list_for(
        self, session: Session, principal: Principal, *, state: JobState | None = None, limit: int = 200
    ) -> list[Job]:
        """Jobs of the principal's projects (every project for oversight roles), newest first."""
        q = select(Job)
        if not (principal.is_system or principal.roles & OVERSIGHT_ROLES):
            q = q.where(Job.project_id.in_(sorted(principal.project_ids)))
        if state is not None:
            q = q.where(Job.state == state.value)
        return list(session.execute(q.order_by(Job.id.desc()).limit(min(limit, 1000))).scalars())

    def latest_attempt(self, session: Session, job: Job) -> JobAttempt | None:
        q = select(JobAttempt).where(JobAttempt.job_id == job.id).order_by(JobAttempt.number.desc()).limit(1)
        return session.execute(q).scalar_one_or_none()

    def _index(self, session: Session, job: Job) -> SourceIndex | None:
        """A salted index of the identifier columns of the datasets the job read (None: none)."""
        from countylab.airlock.leakage import build_index

        names = {d for a in JobSpec.from_dict(job.spec).actions for d in a.datasets}
        datasets = [ds for ds in allowed_datasets(session, job.project_id) if ds.name in names]
        columns: set[str] = {ds.privacy_unit_column for ds in datasets if ds.privacy_unit_column}
        if datasets:
            q = select(DatasetColumn.name).where(
                DatasetColumn.dataset_id.in_([ds.id for ds in datasets]), DatasetColumn.pii_kind.is_not(None)
            )
            columns |= set(session.execute(q).scalars())
        files = self.datasets.files_of(session, job.project_id, names)
        if not columns or not files:
            return None
        return build_index(files, identifier_columns=sorted(columns))

    def log_excerpt(self, session: Session, principal: Principal, job_id: int) -> list[ScannedLog]:
        """The scanned tail of each action's stdout/stderr of the latest attempt (see :mod:`.logscan`)."""
        job = self.service.get(session, principal, job_id)
        attempt = self.latest_attempt(session, job)
        if attempt is None or not attempt.outbox_path or attempt.state == JobState.running.value:
            return []
        key = (job.id, attempt.number, str(attempt.finished_at))
        with self._lock:
            if key in self._excerpts:
                self._excerpts.move_to_end(key)
                return self._excerpts[key]
        index = self._index(session, job)
        outbox = Path(attempt.outbox_path)
        found: list[ScannedLog] = []
        for action in JobSpec.from_dict(job.spec).actions:
            for stream in ("stdout", "stderr"):
                path = outbox / action.name / "logs" / f"{stream}.txt"
                found.append(scan_log_file(path, action.name, stream, index))
        with self._lock:
            self._excerpts[key] = found
            while len(self._excerpts) > 256:
                self._excerpts.popitem(last=False)
        return found

    def outbox_files(self, job_id: int) -> list[Path]:
        """Regular files in the outbox of the job's latest attempt (links and devices skipped)."""
        with self.lab.tx() as s:
            job = s.get(Job, job_id)
            attempt = self.latest_attempt(s, job) if job is not None else None
            root = Path(attempt.outbox_path) if attempt is not None and attempt.outbox_path else None
        if root is None or not root.is_dir():
            return []
        files: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if stat.S_ISREG(os.lstat(path).st_mode):
                    files.append(path)
        return files
