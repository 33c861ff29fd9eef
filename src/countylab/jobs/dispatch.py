"""The dispatcher: the loop between the queue (database) and an executor.

Each :meth:`Dispatcher.step` records finished attempts, forwards cancel requests, refreshes
heartbeats and claims as many queued jobs as the executor has free slots — each database change
in its own short transaction.  Several dispatchers may share one database (threads, processes,
servers): the queue's compare-and-set claim keeps every job to one of them.

On start, and every ``reconcile_interval_s`` after, :meth:`recover` reconciles jobs left
``running`` by processes that are gone: a process is alive while its row in ``lab_servers`` beats
(:mod:`countylab.storage.leader`), so a job running on another live server is never touched,
and one whose server died (or this server's previous incarnation) becomes ``lost`` and is
requeued once (or failed).  Queued jobs simply wait.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from countylab.jobs.attempt import AttemptTicket
from countylab.jobs.executors import Executor
from countylab.jobs.queue import Claim, cancel_requests, claim_next, heartbeat, reconcile, record_outcome
from countylab.jobs.spec import JobSpec
from countylab.jobs.validate import Quota, topological_order
from countylab.storage.db import transaction
from countylab.storage.jobs_models import Job
from countylab.storage.leader import gone_servers, live_servers, new_server_id
from countylab.storage.models import utcnow

log = logging.getLogger(__name__)

DatasetPaths = Callable[[Session, int], Mapping[str, Path]]


def new_worker_id() -> str:
    """Unique per process start, so a restarted server never mistakes old claims for its own."""
    return new_server_id()


class Dispatcher:
    """Claims jobs for one executor.  ``datasets(session, project_id)`` gives the host paths of
    the datasets granted to a project (the catalog's answer at dispatch time)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        executor: Executor,
        *,
        datasets: DatasetPaths,
        outbox_root: Path,
        default_quota: Quota = Quota(),
        worker_id: str | None = None,
        poll_interval_s: float = 0.2,
        heartbeat_interval_s: float = 10.0,
        python_prefix: Path | None = None,
        server_expire_s: float = 15.0,
        reconcile_interval_s: float = 5.0,
    ) -> None:
        self.sessions = sessions
        self.executor = executor
        self.datasets = datasets
        self.outbox_root = outbox_root
        self.default_quota = default_quota
        self.worker_id = worker_id or new_worker_id()
        self.poll_interval_s = poll_interval_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.python_prefix = python_prefix
        self.server_expire_s = server_expire_s
        self.reconcile_interval_s = reconcile_interval_s
        self._last_reconcile = utcnow()
        self._running: set[int] = set()
        self._cancelled: set[int] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_beat = utcnow()
        executor.subscribe(self.wake)

    def _tx(self) -> AbstractContextManager[Session]:
        return transaction(self.sessions)

    # -- lifecycle ---------------------------------------------------------------------------
    def recover(self, *, live_workers: set[str] | None = None, periodic: bool = False) -> list[int]:
        """Declare lost the running jobs of workers that are not alive: not this one, not a server
        with a fresh heartbeat, not in ``live_workers``.

        ``periodic``: the check a running dispatcher repeats; it judges only workers registered
        in ``lab_servers`` whose beat stopped (at start, any worker not known alive is gone).
        """
        with self._tx() as s:
            live = live_servers(s, expire_s=self.server_expire_s) | {self.worker_id} | (live_workers or set())
            only = gone_servers(s, expire_s=self.server_expire_s) if periodic else None
            lost = reconcile(s, actor=f"worker:{self.worker_id}", live_workers=live, only_workers=only)
        self._last_reconcile = utcnow()
        return lost

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="countylab-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, *, shutdown_executor: bool = True, release: bool = False) -> None:
        """Stop claiming and stop the executor's attempts.

        ``release``: also record those attempts (lost, requeued once).  Needed when only the
        dispatcher stops and the process lives on (it lost its leadership): its heartbeat stays
        fresh, so nobody else would ever recover those jobs.  When the process ends, its row in
        ``lab_servers`` is marked stopped and the next leader recovers them instead.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if shutdown_executor:
            self.executor.shutdown()
            if release:
                self._record_outcomes()

    def _record_outcomes(self) -> None:
        for outcome in self.executor.poll():
            try:
                with self._tx() as s:
                    record_outcome(s, worker_id=self.worker_id, outcome=outcome)
            except Exception:  # noqa: BLE001 - the database is gone: the server's beat will age
                log.exception("could not record the outcome of job %d", outcome.job_id)
            self._running.discard(outcome.job_id)
            self._cancelled.discard(outcome.job_id)

    def wake(self) -> None:
        """Run a step now (a job was submitted, cancelled, or finished)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # keep dispatching; the next step retries
                log.exception("dispatcher step failed")
            self._wake.wait(self.poll_interval_s)
            self._wake.clear()

    # -- one round -----------------------------------------------------------------------------
    def step(self) -> int:
        """Record outcomes, forward cancels, beat, reconcile, claim; returns how many jobs it started."""
        for outcome in self.executor.poll():
            with self._tx() as s:
                record_outcome(s, worker_id=self.worker_id, outcome=outcome)
            self._running.discard(outcome.job_id)
            self._cancelled.discard(outcome.job_id)
        if utcnow() - self._last_reconcile > timedelta(seconds=self.reconcile_interval_s):
            lost = self.recover(periodic=True)  # servers that died since: their jobs come back to the queue
            if lost:
                log.warning("recovered %d job(s) of servers that stopped beating: %s", len(lost), lost)
        if self._running:
            with self._tx() as s:
                for job_id in cancel_requests(s, self.worker_id):
                    if job_id not in self._cancelled:
                        self._cancelled.add(job_id)
                        self.executor.cancel(job_id)
                if utcnow() - self._last_beat > timedelta(seconds=self.heartbeat_interval_s):
                    heartbeat(s, self.worker_id, self._running)
                    self._last_beat = utcnow()
        started = 0
        while self.executor.free_slots() > 0 and not self._stop.is_set():
            with self._tx() as s:
                claim = claim_next(
                    s,
                    worker_id=self.worker_id,
                    outbox_root=self.outbox_root,
                    default_quota=self.default_quota,
                    resolve_datasets=self._resolve,
                )
                ticket = self._ticket(claim) if claim is not None else None
            if ticket is None:
                break
            self._running.add(ticket.job_id)
            self.executor.submit(ticket)
            started += 1
        return started

    def _resolve(self, session: Session, job: Job) -> dict[str, Path]:
        from countylab.errors import NotFound

        granted = self.datasets(session, job.project_id)
        wanted = {ds for a in JobSpec.from_dict(job.spec).actions for ds in a.datasets}
        missing = sorted(wanted - set(granted))
        if missing:
            raise NotFound(
                f"项目已无权使用数据集：{', '.join(missing)}",
                f"the project is no longer granted: {', '.join(missing)}",
                datasets=missing,
            )
        return {name: Path(granted[name]) for name in wanted}

    def _ticket(self, claim: Claim) -> AttemptTicket:
        spec = JobSpec.from_dict(claim.job.spec)
        return AttemptTicket(
            job_id=claim.job.id,
            attempt=claim.attempt.number,
            project_id=claim.job.project_id,
            actions=tuple(topological_order(spec)),
            code_dir=Path(claim.job.code_path),
            outbox_dir=Path(claim.attempt.outbox_path),
            datasets=claim.datasets,
            python_prefix=self.python_prefix,
        )
