"""Release requests (出域申请) from draft to release: the airlock's service layer.

Entry points (API, pages, CLI) call one method each, inside a transaction they own; every
state change goes through :func:`countylab.airlock.states.transition` and writes an audit
event in the same transaction.  The pieces it composes:

* files are chosen by **selectors** the developer declared (:mod:`.selection`), never by
  browsing the outbox; the lab copies them into its own store with their SHA-256
  (:mod:`.outbox`) and the developer learns only how many were taken;
* a request is **bound to its job**; each submission opens a new **round**
  (:mod:`.rounds`) whose datasets, grade, review rule and checkers are computed afresh from
  the job it names — a resubmission is a new request in all but its history;
* the automatic checks (:mod:`.checks`) run **outside any write transaction**, in a worker
  with time and memory limits (:mod:`.checkrun`): :meth:`AirlockService.check_pending` reads
  what they need, commits, runs them, and records the results in a second short transaction;
  a worker that dies or times out returns the request with the rule ``check_failed_to_run``;
* votes, comments, previews and release live in :mod:`.release` (same class, second module).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.airlock import changes, rounds
from countylab.airlock.checking import CheckingMixin, Runner
from countylab.airlock.checkrun import CheckLimits, run_in_worker
from countylab.airlock.checks import OcrEngine, library
from countylab.airlock.checks.base import DEFAULT_SIZE_CAPS, FileKind
from countylab.airlock.context import ReadPaths, job_datasets, release_policy
from countylab.airlock.outbox import list_outbox
from countylab.airlock.release import ReleaseMixin
from countylab.airlock.selection import Declared, check_selectors, expand
from countylab.airlock.sources import IndexCache
from countylab.airlock.staging import Staged, StagingMixin, copy_files, select_files
from countylab.airlock.states import ReleaseEvent, ReleaseState, transition
from countylab.errors import NotFound, PermissionDenied, ValidationFailed
from countylab.identity.access import SYSTEM, Principal, authorize
from countylab.identity.projects import authorize_member
from countylab.identity.roles import Permission
from countylab.storage.airlock_models import ReleaseComment, ReleaseFile, ReleaseRequest
from countylab.storage.jobs_models import Job
from countylab.storage.models import utcnow

_SYSTEM_ACTOR = SYSTEM


@dataclass(frozen=True)
class FileChoice:
    """One selector the developer writes (``*``, ``logs`` or a declared ``<action>/<path>``),
    with what they say about the files it takes (see :mod:`.selection`)."""

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
            "selector": self.name,
        }


@dataclass
class AirlockService(StagingMixin, CheckingMixin, ReleaseMixin):
    store_dir: Path
    index_cache: IndexCache
    read_paths: ReadPaths
    ocr: OcrEngine | None = None
    size_caps: Mapping[FileKind, int] = field(default_factory=lambda: dict(DEFAULT_SIZE_CAPS))
    ledger_threshold: int = 10
    check_limits: CheckLimits = field(default_factory=CheckLimits)
    check_runner: Runner = run_in_worker

    def _job(self, s: Session, actor: Principal, job_id: int) -> Job:
        authorize(actor, Permission.release_create, target=f"job:{job_id}")
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound(f"作业 {job_id} 不存在", f"job {job_id} not found", reason="no_job")
        authorize_member(s, actor, Permission.release_create, job.project_id, f"job:{job_id}")
        return job

    def _member(self, s: Session, actor: Principal, request_id: int) -> ReleaseRequest:
        authorize(actor, Permission.release_create, target=f"release:{request_id}")
        req = self.load(s, request_id, lock=True)
        authorize_member(s, actor, Permission.release_create, req.project_id, f"release:{request_id}")
        return req

    # -- the developer's side -----------------------------------------------------------------
    def outbox(self, s: Session, actor: Principal, job_id: int) -> dict[str, Any]:
        """What a developer may know of a job's outbox before review: the selectors its spec
        declares and how many files each would take.  Never names or sizes."""
        job = self._job(s, actor, job_id)
        declared = Declared.of(job.spec)
        entries = list_outbox(s, job)
        selectors = ["*", "logs", *declared.outputs]
        counts = {  # what a request with the selector would take (sidecars never leave)
            sel: sum(1 for _i, e in expand(declared, entries, [sel]) if not library.is_sidecar(e.name))
            for sel in selectors
        }
        return {"job_id": job.id, "selectors": selectors, "counts": counts}

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
        staged: Staged | None = None,
    ) -> ReleaseRequest:
        job = self._job(s, actor, job_id)
        check_selectors(Declared.of(job.spec), [f.name for f in files])
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
        added = self._add_files(s, req, job, files, staged)
        audit.record(
            s,
            actor,
            "release.create",
            f"release:{req.id}",
            job_id=job.id,
            project_id=job.project_id,
            grade=req.grade,
            selectors=[f.name for f in files],
            files=rounds.file_hashes(added),
        )
        return req

    def _add_files(
        self,
        s: Session,
        req: ReleaseRequest,
        job: Job,
        files: Sequence[FileChoice],
        staged: Staged | None = None,
    ) -> list[ReleaseFile]:
        """The request's files for this round: the ``staged`` copies (made before the transaction
        by :meth:`stage`) moved into place, or — for callers without staging — copied now."""
        if staged is None:
            declared = Declared.of(job.spec)
            entries = list_outbox(s, job)
            taken = select_files(declared, entries, files)
            folder = self.store_dir / "requests" / str(req.id) / f"round-{req.round}"
            placed = [(f, f.path) for f in copy_files(folder, entries, taken)]
        else:
            if staged.job_id != job.id:
                raise ValidationFailed(
                    "暂存文件与作业不符", "the staged files are of another job", reason="staged"
                )
            placed = self.place(req, staged)
        added: list[ReleaseFile] = []
        for f, dest in placed:
            choice = files[f.choice]
            row = ReleaseFile(
                request_id=req.id,
                name=f.name,
                description=choice.description,
                controls=choice.controls,
                spec=choice.spec(),
                stored_path=str(dest),
                sha256=f.sha256,
                bytes=f.bytes,
                checks=[],
                ledger_risks=[],
            )
            s.add(row)
            added.append(row)
        s.flush()
        return added

    def submit(self, s: Session, actor: Principal, request_id: int) -> ReleaseRequest:
        """Submit a draft: opens round 1.  The checks run afterwards, outside this transaction
        (:meth:`check_pending`)."""
        req = self._member(s, actor, request_id)
        new = transition(req.state, ReleaseEvent.submit)
        if new.value == req.state:  # a repeated click: already submitted
            audit.record(s, actor, "release.submit", f"release:{req.id}", unchanged=True)
            return req
        return self._submitted(s, actor, req, new, "release.submit", previous_job=None)

    def resubmit(
        self,
        s: Session,
        actor: Principal,
        request_id: int,
        *,
        job_id: int | None = None,
        files: Sequence[FileChoice] | None = None,
        staged: Staged | None = None,
        replies: Mapping[int, str] | None = None,
    ) -> ReleaseRequest:
        """Send a returned request back as a new round: files are taken afresh from the job it
        names (the same one by default, with the same selectors unless new ones are given), and
        datasets, grade, review rule and checkers are recomputed from that job.  The job must be
        of the request's own project; no vote of an earlier round counts.

        ``replies`` (comment id → text) answer the checkers' comments; what changed since the
        last round (files added, removed, changed; table cells) is recorded for the checkers
        (:mod:`.changes`)."""
        req = self._member(s, actor, request_id)
        new = transition(req.state, ReleaseEvent.resubmit)
        if new.value == req.state:
            audit.record(s, actor, "release.resubmit", f"release:{req.id}", unchanged=True)
            return req
        job = self._job(s, actor, job_id if job_id is not None else req.job_id)
        if job.project_id != req.project_id:
            raise PermissionDenied(
                "重新提交只能使用本申请所属项目的作业",
                "a resubmission must use a job of the request's own project",
                permission=Permission.release_create.value,
                target=f"release:{req.id}",
                reason="other_project",
            )
        old = self.files(s, req)
        choices = list(files) if files else rounds.previous_choices(old)
        check_selectors(Declared.of(job.spec), [c.name for c in choices])
        policy = release_policy(job_datasets(s, job))  # recomputed: never carried over
        answers = changes.check_replies(s, req.id, replies or {})
        before = [changes.Snapshot.of(f) for f in old]
        prior = rounds.current(s, req)  # its cells are shown only if its files could be previewed
        shown_before = prior is not None and prior.checks_status != "fail"
        rounds.close(s, req, "returned")
        for c in s.execute(select(ReleaseComment).where(ReleaseComment.request_id == req.id)).scalars():
            c.file_id = None
        for f in old:
            s.delete(f)
        s.flush()
        previous_job = req.job_id
        req.round += 1
        req.job_id = job.id
        req.grade = policy.grade.value
        req.checkers_needed = policy.rule.checkers
        req.officer_needed = policy.rule.security_officer
        req.datasets = [{"id": d.id, "name": d.name, "version": d.current_version} for d in policy.datasets]
        req.checks_status = None
        added = self._add_files(s, req, job, choices, staged)
        self._submitted(s, actor, req, new, "release.resubmit", previous_job=previous_job)
        linked = [(cid, self.comment(s, actor, req.id, text).id) for cid, text in answers.items()]
        changes.record(s, req.id, req.round, changes.compare(before, added, cells=shown_before), linked)
        return req

    def _member_read(self, s: Session, actor: Principal, request_id: int) -> ReleaseRequest:
        """:meth:`_member` without the row lock, for pages (read-only transactions)."""
        authorize(actor, Permission.release_create, target=f"release:{request_id}")
        req = self.load(s, request_id)
        authorize_member(s, actor, Permission.release_create, req.project_id, f"release:{request_id}")
        return req

    def current_selectors(self, s: Session, actor: Principal, request_id: int) -> list[str]:
        """The selectors the request's current round took (a member's own choices)."""
        req = self._member_read(s, actor, request_id)
        return sorted(c.name for c in rounds.previous_choices(self.files(s, req)))

    def choices_for(
        self, s: Session, actor: Principal, request_id: int, selectors: Sequence[str]
    ) -> list[FileChoice]:
        """The new round's choices from the selectors ticked: what the developer wrote about a
        selector the last round had is kept; a new selector starts blank."""
        req = self._member_read(s, actor, request_id)
        known = {c.name: c for c in rounds.previous_choices(self.files(s, req))}
        return [known.get(sel, FileChoice(sel)) for sel in dict.fromkeys(selectors)]

    def withdraw(self, s: Session, actor: Principal, request_id: int) -> ReleaseRequest:
        req = self._member(s, actor, request_id)
        before = req.state
        req.state = transition(req.state, ReleaseEvent.withdraw).value
        if before != req.state and before != ReleaseState.draft.value:
            rounds.close(s, req, "withdrawn")
        audit.record(s, actor, "release.withdraw", f"release:{req.id}", round=req.round)
        return req

    def _submitted(
        self,
        s: Session,
        actor: Principal,
        req: ReleaseRequest,
        new: ReleaseState,
        action: str,
        previous_job: int | None,
    ) -> ReleaseRequest:
        req.state = new.value
        req.submitted_at = utcnow()
        req.return_reason = ""
        files = self.files(s, req)
        rounds.open_round(s, req, actor, files)
        audit.record(
            s,
            actor,
            action,
            f"release:{req.id}",
            round=req.round,
            job_id=req.job_id,
            previous_job_id=previous_job,
            grade=req.grade,
            checkers_needed=req.checkers_needed,
            officer_needed=req.officer_needed,
            datasets=[d.get("id") for d in req.datasets or []],
            files=rounds.file_hashes(files),
        )
        return req
