"""The automatic checks of a submitted release request, run outside any write transaction.

:meth:`CheckingMixin.check_pending` is what entry points call after the transaction that
submitted (or resubmitted) a request has committed.  It never holds a write lock while a check
runs: (1) a short read reads what the checks need into a :class:`~.checkrun.CheckJob`; (2) a
worker process with time and memory limits runs the checks and builds the source index
(:mod:`.checkrun`); (3) a short write transaction records the results, if the request is still
in the round that was checked.  A worker that dies, times out or runs out of memory returns the
request with the rule ``check_failed_to_run``.  A request left ``submitted`` by a crash between
(1) and (3) is picked up again by :meth:`CheckingMixin.recheck_stale`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.airlock import ledger_store, rounds
from countylab.airlock.checkrun import CheckFailedToRun, CheckJob, CheckLimits
from countylab.airlock.checks import CheckStatus, FileReport, OcrEngine, TableSpec, library, overall
from countylab.airlock.checks.base import FileKind
from countylab.airlock.context import ReadPaths, dataset_source, job_datasets, release_policy
from countylab.airlock.sources import IndexCache
from countylab.airlock.states import ReleaseEvent, ReleaseState, transition
from countylab.identity.access import SYSTEM, Principal
from countylab.notify.hooks import release_notice
from countylab.storage.airlock_models import ReleaseFile, ReleaseRequest
from countylab.storage.jobs_models import Job
from countylab.storage.models import Project, utcnow

if TYPE_CHECKING:
    from countylab.airlock.release import StagedFile

log = logging.getLogger(__name__)
Tx = Callable[[], AbstractContextManager[Session]]
Runner = Callable[[CheckJob, CheckLimits], list[FileReport]]


class CheckingMixin:
    index_cache: IndexCache
    read_paths: ReadPaths
    ocr: OcrEngine | None
    size_caps: Mapping[FileKind, int]
    ledger_threshold: int
    check_limits: CheckLimits
    check_runner: Runner

    if TYPE_CHECKING:  # provided by ReleaseMixin (the service inherits both)

        def load(self, s: Session, request_id: int, *, lock: bool = False) -> ReleaseRequest: ...
        def files(self, s: Session, req: ReleaseRequest) -> list[ReleaseFile]: ...
        def release_now(
            self,
            s: Session,
            req: ReleaseRequest,
            actor: Principal,
            staged: Mapping[int, StagedFile] | None = None,
        ) -> None: ...

    def recheck_stale(self, tx: Tx, *, older_than: timedelta = timedelta(minutes=10)) -> list[int]:
        """Check again the requests a crash left ``submitted`` (ids that were checked)."""
        with tx() as s:
            q = select(ReleaseRequest.id).where(
                ReleaseRequest.state == ReleaseState.submitted.value,
                ReleaseRequest.submitted_at < utcnow() - older_than,
            )
            ids = list(s.execute(q).scalars())
        return [i for i in ids if self.check_pending(tx, i) is not None]

    def check_pending(self, tx: Tx, request_id: int, read: Tx | None = None) -> str | None:
        """Run the automatic checks of a submitted request and record them; the new state.

        Three steps, none holding a write lock while the checks run: (1) a short transaction
        reads what the checks need; (2) a worker with time and memory limits runs them; (3) a
        short transaction records the results if the request is still in the same round.
        Returns None when there was nothing to do (not submitted, or another caller did it)."""
        with (read or tx)() as s:
            req = self.load(s, request_id)
            if req.state != ReleaseState.submitted.value:
                return None
            job = self._check_job(s, req)
        try:
            reports: list[FileReport] | None = self.check_runner(job, self.check_limits)
            failure: CheckFailedToRun | None = None
        except CheckFailedToRun as exc:
            reports, failure = None, exc
            log.warning("checks of release request %s failed to run: %s %s", request_id, exc.why, exc.detail)
        risks: dict[int, list[dict[str, Any]]] = {}
        if reports is not None:
            with (read or tx)() as s:
                risks = self._ledger_risks(s, request_id, job, reports)
        with tx() as s:
            req = self.load(s, request_id, lock=True)
            if req.state != ReleaseState.submitted.value or req.round != job.round:
                return None  # withdrawn meanwhile, or another caller recorded this round
            if reports is None:
                failed = failure or CheckFailedToRun("died")
                return release_notice(s, req, self._failed_to_run(s, req, failed))
            return release_notice(s, req, self._record(s, req, job, reports, risks))

    def _check_job(self, s: Session, req: ReleaseRequest) -> CheckJob:
        files = self.files(s, req)
        job = s.get(Job, req.job_id)
        datasets = job_datasets(s, job) if job is not None else []
        policy = release_policy(datasets)
        tables = {
            f.name: TableSpec(
                tuple((f.spec or {}).get("count_columns") or ()),
                tuple((f.spec or {}).get("magnitude_columns") or ()),
                sidecar=library.stored_sidecar(f.stored_path),
            )
            for f in files
        }
        return CheckJob(
            request_id=req.id,
            round=req.round,
            files=tuple((f.id, f.name, f.stored_path) for f in files),
            tables=tables,
            sdc=policy.sdc,
            sources=tuple(dataset_source(s, d, self.read_paths) for d in datasets),
            index_root=self.index_cache.root,
            size_caps=dict(self.size_caps),
            ocr=self.ocr,
        )

    def _ledger_risks(
        self, s: Session, request_id: int, job: CheckJob, reports: list[FileReport]
    ) -> dict[int, list[dict[str, Any]]]:
        req = self.load(s, request_id)
        project = s.get(Project, req.project_id)
        ids = [int(d["id"]) for d in req.datasets or []]
        found: dict[int, list[dict[str, Any]]] = {}
        by_id = {f.id: f for f in self.files(s, req)}
        for (file_id, _name, _path), report in zip(job.files, reports, strict=True):
            f = by_id.get(file_id)
            if f is not None and report.status is not CheckStatus.fail:
                found[file_id] = ledger_store.risks_for(
                    s, req, f, ids, project.slug if project else "", self.ledger_threshold
                )
        return found

    def _record(
        self,
        s: Session,
        req: ReleaseRequest,
        job: CheckJob,
        reports: list[FileReport],
        risks: dict[int, list[dict[str, Any]]],
    ) -> str:
        by_id = {f.id: f for f in self.files(s, req)}
        for (file_id, _name, _path), report in zip(job.files, reports, strict=True):
            f = by_id[file_id]
            self._store_report(f, report)
            f.ledger_risks = risks.get(file_id, [])
            if f.ledger_risks:  # a differencing hit returns the request on 一般3级 and above
                hit = ledger_store.hit_status(req.grade)
                f.checks = [*f.checks, {**_ledger_result(f.ledger_risks), "status": hit.value}]
                f.check_status = _worst(f.check_status, hit)
        status = overall(reports)
        if any(f.ledger_risks for f in by_id.values()):
            status = max(status, ledger_store.hit_status(req.grade), key=lambda x: x.severity)
        req.checks_status = status.value
        failed = sorted({r.check for rep in reports for r in rep.results if r.status is CheckStatus.fail})
        rounds.record_checks(s, req, list(by_id.values()), failed)
        audit.record(
            s,
            None,
            "release.checks",
            f"release:{req.id}",
            outcome="ok" if status is not CheckStatus.fail else "failed",
            status=status.value,
            round=req.round,
            failed_rules=failed,
        )
        if status is CheckStatus.fail:
            req.state = transition(req.state, ReleaseEvent.return_).value
            req.return_reason = "automatic_checks"
            return req.state
        req.state = transition(req.state, ReleaseEvent.start_review).value
        if req.checkers_needed == 0 and any(library.is_free_form(f.checks) for f in by_id.values()):
            req.checkers_needed = 1  # free-form files are read by a person at every grade
        if req.checkers_needed == 0 and status is CheckStatus.warn:
            req.checkers_needed = 1  # nothing is released automatically past a warning
        if req.checkers_needed == 0 and not req.officer_needed:  # 一般1级: automatic checks suffice
            self.release_now(s, req, SYSTEM)
        return req.state

    def _failed_to_run(self, s: Session, req: ReleaseRequest, failure: CheckFailedToRun) -> str:
        req.checks_status = CheckStatus.fail.value
        req.state = transition(req.state, ReleaseEvent.return_).value
        req.return_reason = "check_failed_to_run"
        rounds.record_checks(s, req, self.files(s, req), ["check_failed_to_run"])
        audit.record(
            s,
            None,
            "release.checks",
            f"release:{req.id}",
            outcome="failed",
            status="fail",
            round=req.round,
            failed_rules=["check_failed_to_run"],
            why=failure.why,
            detail=failure.detail,
        )
        return req.state

    def _store_report(self, f: ReleaseFile, report: FileReport) -> None:
        f.checks = [
            {
                "check": r.check,
                "status": r.status.value,
                "messages_zh": list(r.messages_zh),
                "messages_en": list(r.messages_en),
                "details": _jsonable(r.details),
                "replacement": r.replacement is not None,
            }
            for r in report.results
        ]
        f.check_status = report.status.value
        kinds = [r.details.get("kind") for r in report.results if r.check == "file_type"]
        f.kind = (
            str(kinds[0]) if kinds and kinds[0] and report.results[0].status is not CheckStatus.fail else None
        )
        clean = Path(f.stored_path + ".clean")
        clean.unlink(missing_ok=True)
        if report.replacement is not None:
            clean.write_bytes(report.replacement)
            clean.chmod(0o400)


def _worst(current: str | None, other: CheckStatus) -> str:
    now = CheckStatus(current) if current else CheckStatus.passed
    return max(now, other, key=lambda x: x.severity).value


def _ledger_result(risks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "check": "ledger",
        "status": CheckStatus.warn.value,
        "messages_zh": [str(r["message_zh"]) for r in risks],
        "messages_en": [str(r["message_en"]) for r in risks],
        "details": {"risks": len(risks)},
        "replacement": False,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class StaleRechecks:
    """A background loop that runs :meth:`CheckingMixin.recheck_stale` every ``interval_s``, so a
    request a crash left ``submitted`` (between the commit and the recorded results) is checked
    again instead of waiting forever.  Started with the lab's other background services."""

    def __init__(self, service: CheckingMixin, tx: Tx, interval_s: float = 60.0) -> None:
        self.service, self.tx, self.interval_s = service, tx, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="airlock-rechecks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.service.recheck_stale(self.tx)
            except Exception:  # noqa: BLE001 - a failed pass is retried on the next tick
                log.exception("re-checking stale release requests failed")
