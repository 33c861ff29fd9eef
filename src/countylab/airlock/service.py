"""Release requests (出域申请) from draft to release: the airlock's service layer.

Entry points (API, pages, CLI) call one method each, inside a transaction they own; every
state change goes through :func:`countylab.airlock.states.transition` and writes an audit
event in the same transaction.  The pieces it composes:

* files are copied from the job's outbox into the airlock's own store when the request is
  made (:mod:`.outbox`), with their SHA-256;
* on submit the automatic checks run (:mod:`.checks`) with the grade's SDC thresholds and a
  cached source index (:mod:`.sources`, :mod:`.context`); any failing check returns the request
  to the developer before a human sees it; declared frequency tables are compared with the
  cross-project ledger (:mod:`.ledger_store`) and risks are shown to checkers;
* votes, comments, previews and release live in :mod:`.release` (same class, second module).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.airlock import ledger_store
from countylab.airlock.checks import (
    CheckContext,
    CheckStatus,
    FileReport,
    OcrEngine,
    OutputFile,
    TableSpec,
    overall,
    run_checks,
)
from countylab.airlock.checks.base import DEFAULT_SIZE_CAPS, FileKind
from countylab.airlock.context import ReadPaths, dataset_source, job_datasets, release_policy
from countylab.airlock.outbox import OutboxEntry, OutboxLister, copy_into_store, find_entry, list_outbox
from countylab.airlock.release import ReleaseMixin
from countylab.airlock.sources import IndexCache
from countylab.airlock.states import ReleaseEvent, ReleaseState, transition
from countylab.errors import NotFound, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.storage.airlock_models import ReleaseComment, ReleaseFile, ReleaseRequest
from countylab.storage.jobs_models import Job
from countylab.storage.models import Project, utcnow

MAX_FILES = 50


@dataclass(frozen=True)
class FileChoice:
    """One outbox file the developer picks, with what they say about it."""

    name: str
    description: str = ""
    controls: str = ""  # the disclosure controls applied (suppression, rounding, DP…)
    count_columns: tuple[str, ...] = ()
    magnitude_columns: tuple[str, ...] = ()
    filter: str = ""  # the population the table covers ("excluding 低保 households")

    def spec(self) -> dict[str, Any]:
        return {
            "count_columns": list(self.count_columns),
            "magnitude_columns": list(self.magnitude_columns),
            "filter": self.filter,
        }


@dataclass
class AirlockService(ReleaseMixin):
    store_dir: Path
    index_cache: IndexCache
    read_paths: ReadPaths
    ocr: OcrEngine | None = None
    size_caps: Mapping[FileKind, int] = field(default_factory=lambda: dict(DEFAULT_SIZE_CAPS))
    outbox_lister: OutboxLister | None = None
    ledger_threshold: int = 10

    def _job(self, s: Session, actor: Principal, job_id: int) -> Job:
        authorize(actor, Permission.release_create, target=f"job:{job_id}")
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound(f"作业 {job_id} 不存在", f"job {job_id} not found", reason="no_job")
        authorize(actor, Permission.release_create, project_id=job.project_id, target=f"job:{job_id}")
        if not actor.is_system and job.project_id not in actor.project_ids:
            authorize(
                actor,
                Permission.release_create,
                project_id=job.project_id,
                project_owner=True,
                target=f"job:{job_id}",
            )
        return job

    def _member(self, s: Session, actor: Principal, request_id: int) -> ReleaseRequest:
        authorize(actor, Permission.release_create, target=f"release:{request_id}")
        req = self.load(s, request_id, lock=True)
        if not actor.is_system and req.project_id not in actor.project_ids:
            authorize(
                actor,
                Permission.release_create,
                project_id=req.project_id,
                project_owner=True,
                target=f"release:{request_id}",
            )
        return req

    # -- the developer's side -----------------------------------------------------------------
    def outbox(self, s: Session, actor: Principal, job_id: int) -> list[OutboxEntry]:
        return list_outbox(s, self._job(s, actor, job_id), self.outbox_lister)

    def jobs_with_outbox(self, s: Session, actor: Principal) -> list[Job]:
        authorize(actor, Permission.release_create)
        q = select(Job).where(Job.state == "succeeded").order_by(Job.id.desc()).limit(100)
        if not actor.is_system:
            q = q.where(Job.project_id.in_(actor.project_ids))
        return list(s.execute(q).scalars())

    def create(
        self,
        s: Session,
        actor: Principal,
        job_id: int,
        files: Sequence[FileChoice],
        *,
        title: str = "",
        note: str = "",
    ) -> ReleaseRequest:
        job = self._job(s, actor, job_id)
        entries = list_outbox(s, job, self.outbox_lister)
        policy = release_policy(job_datasets(s, job))  # 核心数据: PermissionDenied, nothing releasable
        req = ReleaseRequest(
            project_id=job.project_id,
            job_id=job.id,
            created_by=actor.user_id,
            title=title.strip()[:200],
            note=note,
            state=ReleaseState.draft.value,
            grade=policy.grade.value,
            checkers_needed=policy.rule.checkers,
            officer_needed=policy.rule.security_officer,
            round=1,
            datasets=[{"id": d.id, "name": d.name, "version": d.current_version} for d in policy.datasets],
            return_reason="",
        )
        s.add(req)
        s.flush()
        self._add_files(s, req, entries, files)
        audit.append(
            s,
            actor_id=actor.user_id,
            actor=actor.username,
            action="release.create",
            target=f"release:{req.id}",
            details={
                "job_id": job.id,
                "project_id": job.project_id,
                "grade": req.grade,
                "files": [f.name for f in files],
            },
        )
        return req

    def _add_files(
        self, s: Session, req: ReleaseRequest, entries: list[OutboxEntry], files: Sequence[FileChoice]
    ) -> None:
        names = [f.name for f in files]
        if not files:
            raise ValidationFailed(
                "请至少选择一个输出文件", "choose at least one output file", reason="no_files"
            )
        if len(files) > MAX_FILES or len(set(names)) != len(names):
            raise ValidationFailed(
                f"文件重复或超过 {MAX_FILES} 个", f"duplicate files or more than {MAX_FILES}", reason="files"
            )
        for i, choice in enumerate(files):
            entry = find_entry(entries, choice.name)
            base = PurePosixPath(entry.name).name
            dest = self.store_dir / "requests" / str(req.id) / f"round-{req.round}" / f"{i:02d}-{base}"
            sha, size = copy_into_store(entry.path, dest)
            s.add(
                ReleaseFile(
                    request_id=req.id,
                    name=entry.name,
                    description=choice.description,
                    controls=choice.controls,
                    spec=choice.spec(),
                    stored_path=str(dest),
                    sha256=sha,
                    bytes=size,
                    checks=[],
                    ledger_risks=[],
                )
            )
        s.flush()

    def submit(self, s: Session, actor: Principal, request_id: int) -> ReleaseRequest:
        req = self._member(s, actor, request_id)
        new = transition(req.state, ReleaseEvent.submit)
        if new.value == req.state:  # a repeated click: already submitted
            audit.append(
                s,
                actor_id=actor.user_id,
                actor=actor.username,
                action="release.submit",
                target=f"release:{req.id}",
                details={"unchanged": True},
            )
            return req
        return self._submitted(s, actor, req, new, "release.submit")

    def resubmit(
        self,
        s: Session,
        actor: Principal,
        request_id: int,
        *,
        job_id: int | None = None,
        files: Sequence[FileChoice] | None = None,
    ) -> ReleaseRequest:
        """Send a returned request back, optionally with new files (from a re-run job)."""
        req = self._member(s, actor, request_id)
        new = transition(req.state, ReleaseEvent.resubmit)
        if new.value == req.state:
            audit.append(
                s,
                actor_id=actor.user_id,
                actor=actor.username,
                action="release.resubmit",
                target=f"release:{req.id}",
                details={"unchanged": True},
            )
            return req
        req.round += 1
        if files:
            job = self._job(s, actor, job_id if job_id is not None else req.job_id)
            if job.project_id != req.project_id:
                raise ValidationFailed(
                    "只能使用本项目的作业", "use a job of the same project", reason="project"
                )
            entries = list_outbox(s, job, self.outbox_lister)
            for c in s.execute(select(ReleaseComment).where(ReleaseComment.request_id == req.id)).scalars():
                c.file_id = None
            for f in self.files(s, req):
                s.delete(f)
            s.flush()
            req.job_id = job.id
            self._add_files(s, req, entries, files)
        return self._submitted(s, actor, req, new, "release.resubmit")

    def withdraw(self, s: Session, actor: Principal, request_id: int) -> ReleaseRequest:
        req = self._member(s, actor, request_id)
        req.state = transition(req.state, ReleaseEvent.withdraw).value
        audit.append(
            s,
            actor_id=actor.user_id,
            actor=actor.username,
            action="release.withdraw",
            target=f"release:{req.id}",
        )
        return req

    # -- automatic checks ---------------------------------------------------------------------
    def _submitted(
        self, s: Session, actor: Principal, req: ReleaseRequest, new: ReleaseState, action: str
    ) -> ReleaseRequest:
        req.state = new.value
        req.submitted_at = utcnow()
        req.return_reason = ""
        audit.append(
            s,
            actor_id=actor.user_id,
            actor=actor.username,
            action=action,
            target=f"release:{req.id}",
            details={"round": req.round},
        )
        status = self.run_checks(s, req)
        audit.append(
            s,
            actor_id=None,
            actor="system",
            action="release.checks",
            target=f"release:{req.id}",
            outcome="ok" if status is not CheckStatus.fail else "failed",
            details={"status": status.value, "round": req.round},
        )
        if status is CheckStatus.fail:
            req.state = transition(req.state, ReleaseEvent.return_).value
            req.return_reason = "automatic_checks"
            return req
        req.state = transition(req.state, ReleaseEvent.start_review).value
        if req.checkers_needed == 0 and not req.officer_needed:  # 一般1级: automatic checks suffice
            self.release_now(s, req, actor)
        return req

    def check_context(self, s: Session, req: ReleaseRequest, files: Sequence[ReleaseFile]) -> CheckContext:
        job = s.get(Job, req.job_id)
        datasets = job_datasets(s, job) if job is not None else []
        policy = release_policy(datasets)
        index = self.index_cache.index_for([dataset_source(s, d, self.read_paths) for d in datasets])
        tables = {
            f.name: TableSpec(
                tuple((f.spec or {}).get("count_columns") or ()),
                tuple((f.spec or {}).get("magnitude_columns") or ()),
            )
            for f in files
        }
        return CheckContext(
            sdc=policy.sdc, tables=tables, source_index=index, ocr=self.ocr, size_caps=dict(self.size_caps)
        )

    def run_checks(self, s: Session, req: ReleaseRequest) -> CheckStatus:
        files = self.files(s, req)
        context = self.check_context(s, req, files)
        reports = run_checks([OutputFile(f.name, Path(f.stored_path)) for f in files], context)
        slug = s.get(Project, req.project_id)
        for f, report in zip(files, reports, strict=True):
            self._store_report(f, report)
            if f.check_status != CheckStatus.fail.value:
                ids = [int(d["id"]) for d in req.datasets or []]
                f.ledger_risks = ledger_store.risks_for(
                    s, req, f, ids, slug.slug if slug else "", self.ledger_threshold
                )
                if f.ledger_risks:
                    f.checks = [*f.checks, _ledger_result(f.ledger_risks)]
                    f.check_status = _worst(f.check_status, CheckStatus.warn)
        status = overall(reports)
        if any(f.ledger_risks for f in files):
            status = max(status, CheckStatus.warn, key=lambda x: x.severity)
        req.checks_status = status.value
        return status

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
