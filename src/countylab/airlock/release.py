"""The human side of the airlock: views, votes, comments, previews, release and downloads.

Rules (docs/reference/policy.md, :mod:`.review`): a checker never reviews a request from a project
they belong to, nor their own; votes are blind until the viewer has voted or the request is
decided; each person votes once and a vote beyond the grade's slots is refused.  When the
votes approve, the files (the cleaned copies where a check produced one) are copied into the
project's download area with their SHA-256 and declared frequency tables enter the ledger.
Every view, vote, preview and download is an audit event.  A checker previews only files whose
content passed the file type check, so no route ever serves model weights or disguised binaries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.airlock import ledger_store
from countylab.airlock.render import Rendering
from countylab.airlock.render.store import preview_rendering, store_regenerated
from countylab.airlock.review import (
    Outcome,
    Vote,
    VoteChoice,
    VoterRole,
    decision,
    record_vote,
    require_can_review,
    visible_votes,
)
from countylab.airlock.states import ReleaseEvent, ReleaseState, allowed_events, transition
from countylab.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from countylab.identity.access import Principal, authorize, has_permission
from countylab.identity.roles import Permission, Role
from countylab.policy import ReviewRule
from countylab.storage.airlock_models import ReleaseComment, ReleaseFile, ReleaseRequest, ReleaseVote
from countylab.storage.models import Project, User, utcnow

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "svg": "image/svg+xml",
    "text": "text/plain; charset=utf-8",
    "json": "application/json",
}

Tx = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class FileContent:
    name: str
    data: bytes
    sha256: str
    media_type: str
    rendering: Rendering | None = None  # a preview's complete, paged content
    file_id: int = 0
    request_id: int = 0
    purpose: str = "download"  # what the audit event says was done: "preview" or "download"


def rule_of(req: ReleaseRequest) -> ReviewRule:
    return ReviewRule(True, req.checkers_needed, req.officer_needed)


class ReleaseMixin:
    store_dir: Path

    # -- loading ------------------------------------------------------------------------------
    def load(self, s: Session, request_id: int, *, lock: bool = False) -> ReleaseRequest:
        q = select(ReleaseRequest).where(ReleaseRequest.id == request_id)
        req = s.execute(q.with_for_update() if lock else q).scalar_one_or_none()
        if req is None:
            raise NotFound(
                f"出域申请 {request_id} 不存在",
                f"release request {request_id} not found",
                reason="no_request",
            )
        return req

    def files(self, s: Session, req: ReleaseRequest) -> list[ReleaseFile]:
        return list(
            s.execute(
                select(ReleaseFile).where(ReleaseFile.request_id == req.id).order_by(ReleaseFile.id)
            ).scalars()
        )

    def votes(self, s: Session, req: ReleaseRequest) -> list[Vote]:
        rows = s.execute(
            select(ReleaseVote)
            .where(ReleaseVote.request_id == req.id, ReleaseVote.round == req.round)
            .order_by(ReleaseVote.id)
        ).scalars()
        return [Vote(str(v.voter_id), VoteChoice(v.choice), VoterRole(v.role), v.comment) for v in rows]

    def _reviewer(self, actor: Principal, req: ReleaseRequest) -> None:
        authorize(actor, Permission.release_review, target=f"release:{req.id}")
        if actor.is_system:
            return
        require_can_review(
            str(actor.user_id),
            {str(p) for p in actor.project_ids},
            str(req.project_id),
            requester_user_id=str(req.created_by) if req.created_by is not None else None,
        )

    def is_independent_reviewer(self, actor: Principal, req: ReleaseRequest) -> bool:
        try:
            self._reviewer(actor, req)
        except PermissionDenied:
            return False
        return True

    # -- votes and comments -------------------------------------------------------------------
    def vote(
        self,
        s: Session,
        actor: Principal,
        request_id: int,
        choice: str,
        comment: str = "",
        role: str | None = None,
    ) -> ReleaseRequest:
        authorize(actor, Permission.release_review, target=f"release:{request_id}")
        req = self.load(s, request_id, lock=True)
        self._reviewer(actor, req)
        voter = _voter_role(actor, role)
        try:
            chosen = VoteChoice(choice)
        except ValueError:
            raise ValidationFailed(
                "投票只能是批准、拒绝或退回", "a vote is approve, reject or return", reason="choice"
            ) from None
        if chosen is not VoteChoice.approve and not comment.strip():
            raise ValidationFailed(
                "拒绝或退回时请写明理由", "say why when you reject or return", reason="comment"
            )
        if req.state != ReleaseState.under_review.value:
            raise Conflict(
                f"出域申请当前为“{ReleaseState(req.state).label_zh}”，不在审核中",
                f"the release request is {req.state}, not under review",
                reason="not_under_review",
                state=req.state,
            )
        votes = record_vote(
            self.votes(s, req), Vote(str(actor.user_id), chosen, voter, comment), rule_of(req)
        )
        s.add(
            ReleaseVote(
                request_id=req.id,
                round=req.round,
                voter_id=actor.user_id or 0,
                role=voter.value,
                choice=chosen.value,
                comment=comment,
            )
        )
        audit.record(
            s,
            actor,
            "release.vote",
            f"release:{req.id}",
            choice=chosen.value,
            role=voter.value,
            round=req.round,
        )
        outcome = decision(votes, rule_of(req))
        if outcome is Outcome.approved:
            self.release_now(s, req, actor)
        elif outcome is Outcome.rejected:
            req.state = transition(req.state, ReleaseEvent.reject).value
            req.decided_at = utcnow()
            audit.record(s, actor, "release.rejected", f"release:{req.id}")
        elif outcome is Outcome.returned:
            req.state = transition(req.state, ReleaseEvent.return_).value
            req.return_reason = "checker"
            audit.record(s, actor, "release.returned", f"release:{req.id}")
        return req

    def comment(
        self, s: Session, actor: Principal, request_id: int, body: str, file_id: int | None = None
    ) -> ReleaseComment:
        authorize(actor, Permission.release_read, target=f"release:{request_id}")
        req = self.load(s, request_id)
        if not self.is_independent_reviewer(actor, req):
            authorize(actor, Permission.release_create, project_id=req.project_id, target=f"release:{req.id}")
        if not body.strip() or len(body) > 5000:
            raise ValidationFailed(
                "评论不能为空，且不超过 5000 字", "a comment is 1–5000 characters", reason="body"
            )
        if file_id is not None and file_id not in {f.id for f in self.files(s, req)}:
            raise NotFound("该申请中没有这个文件", "no such file in this request", reason="no_file")
        c = ReleaseComment(request_id=req.id, file_id=file_id, author_id=actor.user_id, body=body.strip())
        s.add(c)
        s.flush()
        audit.record(s, actor, "release.comment", f"release:{req.id}", file_id=file_id)
        return c

    # -- release and downloads ----------------------------------------------------------------
    def release_now(self, s: Session, req: ReleaseRequest, actor: Principal) -> None:
        """Approve and hand the files over: cleaned copies, SHA-256, ledger entries."""
        req.state = transition(req.state, ReleaseEvent.approve).value
        req.decided_at = utcnow()
        audit.record(s, actor, "release.approved", f"release:{req.id}")
        released: dict[str, str] = {}
        regenerated: dict[str, dict[str, str]] = {}
        for f in self.files(s, req):
            if f.check_status == "fail" or f.kind is None:  # never: failing requests are returned
                raise Conflict(
                    "未通过检查的文件不能出域",
                    "a file that failed its checks cannot be released",
                    reason="failed_file",
                    file=f.name,
                )
            dest = (
                self.store_dir
                / "released"
                / str(req.project_id)
                / str(req.id)
                / f"{f.id}-{PurePosixPath(f.name).name}"
            )
            # What leaves is what the checkers were shown: the bytes the lab regenerated from
            # the parsed content of the preview (built once, by the checks), never the original.
            f.released_sha256, f.released_bytes = store_regenerated(Path(f.stored_path), f.name, dest)
            f.released_path = str(dest)
            released[f.name] = f.released_sha256
            regenerated[f.name] = {"submitted": f.sha256, "released": f.released_sha256}
            ledger_store.record(s, req, f, req.datasets or [])
        req.state = transition(req.state, ReleaseEvent.release).value
        req.released_at = utcnow()
        audit.record(
            s,
            actor,
            "release.released",
            f"release:{req.id}",
            files=released,
            regenerated=regenerated,
            project_id=req.project_id,
        )

    def content(self, s: Session, actor: Principal, file_id: int, purpose: str = "download") -> FileContent:
        """A released file for the project (``download``), or a file under review for an
        independent checker (``preview``).  Anything else is refused."""
        authorize(actor, Permission.release_read, target=f"release-file:{file_id}")
        f = s.get(ReleaseFile, file_id)
        if f is None:
            raise NotFound("文件不存在", "file not found", reason="no_file")
        req = self.load(s, f.request_id)
        if purpose == "preview":
            self._reviewer(actor, req)
            if (
                req.state in (ReleaseState.draft.value, ReleaseState.submitted.value)
                or req.checks_status == "fail"
            ):
                raise Conflict(
                    "该申请未通过自动检查或尚未提交，审核员不能查看",
                    "the request has not passed its automatic checks: nothing to review",
                    reason="not_in_review",
                    state=req.state,
                )
            if f.kind is None:
                raise Conflict(
                    "该文件未通过文件类型检查，不能预览",
                    "the file failed the file type check: no preview",
                    reason="not_previewable",
                )
            # A checker previews exactly what would be released: the regenerated bytes.
            rendering = preview_rendering(Path(f.stored_path), f.name)
            data, sha = rendering.regenerated, rendering.sha256
        else:
            authorize(
                actor, Permission.release_create, project_id=req.project_id, target=f"release-file:{f.id}"
            )
            if not actor.is_system and req.project_id not in actor.project_ids:
                authorize(
                    actor,
                    Permission.release_create,
                    project_id=req.project_id,
                    project_owner=True,
                    target=f"release-file:{f.id}",
                )
            if req.state != ReleaseState.released.value or f.released_path is None:
                raise Conflict(
                    f"该文件尚未出域（申请状态：{ReleaseState(req.state).label_zh}）",
                    f"the file has not been released (request is {req.state})",
                    reason="not_released",
                    state=req.state,
                )
            rendering = None
            data = Path(f.released_path).read_bytes()
            sha = f.released_sha256 or ""
        return FileContent(  # audited by audit_reads() once the read has committed
            PurePosixPath(f.name).name,
            data,
            sha,
            MEDIA_TYPES.get(f.kind or "", "application/octet-stream"),
            rendering,
            file_id=f.id,
            request_id=req.id,
            purpose=purpose,
        )

    def audit_reads(
        self, tx: Tx, actor: Principal, *, view: int | None = None, contents: Sequence[FileContent] = ()
    ) -> None:
        """The audit events of audited reads (who viewed a request, previewed or downloaded a file),
        written in one short transaction of their own after the read.

        :meth:`view` and :meth:`content` only read, so a page view runs in a read-only unit of work
        and never queues behind writers; only these inserts hold the audit head, for milliseconds.
        A read that failed is not recorded here (its denial is, by the error handler)."""
        if view is None and not contents:
            return
        with tx() as s:
            if view is not None:
                audit.record(s, actor, "release.view", f"release:{view}")
            for c in contents:
                audit.record(
                    s,
                    actor,
                    f"release.{c.purpose}",
                    f"release-file:{c.file_id}",
                    request_id=c.request_id,
                    sha256=c.sha256,
                )

    # -- reading ------------------------------------------------------------------------------
    def view(self, s: Session, actor: Principal, request_id: int) -> dict[str, Any]:
        """Everything the viewer may see of one request (an audited view: the caller records it
        with :meth:`audit_reads` after the read)."""
        authorize(actor, Permission.release_read, target=f"release:{request_id}")
        req = self.load(s, request_id)
        reviewer = self.is_independent_reviewer(actor, req)
        member = actor.is_system or req.project_id in actor.project_ids
        if not reviewer and not member:
            authorize(  # stewards and admins oversee every project's requests (reading only)
                actor,
                Permission.release_read,
                project_id=req.project_id,
                oversight=True,
                target=f"release:{req.id}",
            )
        decided = req.state not in (ReleaseState.under_review.value, ReleaseState.submitted.value)
        votes = self.votes(s, req)
        names = _usernames(s, [int(v.voter_id) for v in votes])
        comments = list(
            s.execute(
                select(ReleaseComment).where(ReleaseComment.request_id == req.id).order_by(ReleaseComment.id)
            ).scalars()
        )
        authors = _usernames(s, [c.author_id for c in comments if c.author_id is not None])
        project = s.get(Project, req.project_id)  # the view is audited by audit_reads()
        voted = any(v.voter_id == str(actor.user_id) for v in votes)
        full = sees_details(actor, req, reviewer=reviewer)
        files = self.files(s, req)
        released = req.state == ReleaseState.released.value
        return {
            **summary(req, project),
            "note": req.note,
            "datasets": list(req.datasets or []),
            "return_reason": req.return_reason,
            "failed_rules": failed_rules(files),
            "round": req.round,
            "rounds": rounds_history(s, req, full=full),
            "details": full,
            "files_count": len(files),
            "files": [
                file_view(f, show_checks=True) if full else developer_file_view(f, n, released=released)
                for n, f in enumerate(files, start=1)
            ],
            "votes": [
                {
                    "hidden": v.hidden,
                    "role": v.role.value,
                    "voter": names.get(int(v.voter_id)) if v.voter_id else None,
                    "choice": v.choice.value if v.choice else None,
                    "comment": v.comment,
                }
                for v in visible_votes(votes, str(actor.user_id), decided=decided)
            ],
            "comments": [
                {
                    "id": c.id,
                    "file_id": c.file_id,
                    "author": authors.get(c.author_id or 0, "system"),
                    "body": c.body,
                    "at": c.at.isoformat(),
                }
                for c in comments
            ],
            "viewer": {
                "reviewer": reviewer,
                "member": member,
                "voted": voted,
                "can_vote": reviewer and req.state == ReleaseState.under_review.value and not voted,
                "events": [e.value for e in allowed_events(req.state)] if member else [],
            },
        }

    def list_requests(self, s: Session, actor: Principal, scope: str = "mine") -> list[dict[str, Any]]:
        authorize(actor, Permission.release_read)
        q = select(ReleaseRequest).order_by(ReleaseRequest.id.desc()).limit(200)
        if scope == "queue":
            authorize(actor, Permission.release_review)
            q = q.where(ReleaseRequest.state == ReleaseState.under_review.value)
            if not actor.is_system:
                q = q.where(ReleaseRequest.project_id.not_in(actor.project_ids))
        elif scope == "all":
            if not (actor.is_system or actor.roles & {Role.steward, Role.admin}):
                raise PermissionDenied(
                    "只有数据安全官和管理员可查看全部出域申请",
                    "only stewards and admins see every release request",
                    permission="release.read",
                    reason="role",
                )
        elif not actor.is_system:
            q = q.where(ReleaseRequest.project_id.in_(actor.project_ids))
        rows = list(s.execute(q).scalars())
        if scope == "queue":
            rows = [r for r in rows if r.created_by != actor.user_id]
        projects = {p.id: p for p in s.execute(select(Project)).scalars()}
        return [summary(r, projects.get(r.project_id)) for r in rows]

    def released_files(self, s: Session, actor: Principal) -> list[dict[str, Any]]:
        """The download area of the actor's projects."""
        authorize(actor, Permission.release_read)
        q = (
            select(ReleaseFile, ReleaseRequest)
            .join(ReleaseRequest, ReleaseRequest.id == ReleaseFile.request_id)
            .where(ReleaseRequest.state == ReleaseState.released.value)
            .order_by(ReleaseFile.id.desc())
        )
        if not actor.is_system:
            q = q.where(ReleaseRequest.project_id.in_(actor.project_ids))
        projects = {p.id: p for p in s.execute(select(Project)).scalars()}
        return [
            {**file_view(f, show_checks=False), "request": summary(r, projects.get(r.project_id))}
            for f, r in s.execute(q)
        ]


def _voter_role(actor: Principal, role: str | None) -> VoterRole:
    if role is None:
        role = (
            VoterRole.checker.value if Role.checker in actor.roles or actor.is_system else "security_officer"
        )
    try:
        voter = VoterRole(role)
    except ValueError:
        raise ValidationFailed("审核角色无效", "invalid reviewer role", reason="role") from None
    needed = Role.checker if voter is VoterRole.checker else Role.steward
    if not actor.is_system and needed not in actor.roles:
        raise PermissionDenied(
            f"需要“{needed.label_zh}”角色才能以此身份投票",
            f"voting as {voter.value} needs the {needed.value} role",
            permission="release.review",
            reason="role",
        )
    return voter


def _usernames(s: Session, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {uid: name for uid, name in s.execute(select(User.id, User.display_name).where(User.id.in_(ids)))}


def summary(req: ReleaseRequest, project: Project | None) -> dict[str, Any]:
    return {
        "id": req.id,
        "title": req.title,
        "state": req.state,
        "state_label": ReleaseState(req.state).label_zh,
        "project_id": req.project_id,
        "project": project.slug if project else None,
        "job_id": req.job_id,
        "grade": req.grade,
        "checkers_needed": req.checkers_needed,
        "officer_needed": req.officer_needed,
        "checks_status": req.checks_status,
        "created_at": req.created_at.isoformat(),
        "released_at": req.released_at.isoformat() if req.released_at else None,
    }


def sees_details(actor: Principal, req: ReleaseRequest, *, reviewer: bool) -> bool:
    """File names, sizes, hashes and check messages are for independent checkers and for
    stewards and admins outside the project; a project member sees them only once released."""
    if actor.is_system or reviewer:
        return True
    return req.project_id not in actor.project_ids and bool(actor.roles & {Role.steward, Role.admin})


def failed_rules(files: list[ReleaseFile]) -> list[str]:
    """The names of the rules that failed, over all files (what a developer is told)."""
    return sorted({str(c.get("check")) for f in files for c in f.checks or [] if c.get("status") == "fail"})


def developer_file_view(f: ReleaseFile, number: int, *, released: bool) -> dict[str, Any]:
    """A file as a project member sees it before release: which of their own selectors took it,
    what they wrote about it, and for each check only the rule's name and its outcome — never
    the file's name, size, hash, content, positions or the checks' messages.  Once released,
    the name, size and hash of what was released are shown too."""
    spec = dict(f.spec or {})
    view: dict[str, Any] = {
        "id": f.id,
        "number": number,
        "selector": spec.get("selector"),
        "label": f"#{number} · {spec.get('selector') or ''}",
        "name": None,
        "description": f.description,
        "controls": f.controls,
        "kind": None,
        "check_status": f.check_status,
        "checks": [{"check": c.get("check"), "status": c.get("status")} for c in f.checks or []],
        "released": f.released_path is not None,
    }
    if released and f.released_path is not None:
        view |= {
            "name": f.name,
            "label": f.name,
            "kind": f.kind,
            "released_sha256": f.released_sha256,
            "released_bytes": f.released_bytes,
        }
    return view


def rounds_history(s: Session, req: ReleaseRequest, *, full: bool) -> list[dict[str, Any]]:
    from countylab.airlock.rounds import history

    return history(s, req, full=full)


def file_view(f: ReleaseFile, *, show_checks: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": f.id,
        "label": f.name,
        "selector": (f.spec or {}).get("selector"),
        "name": f.name,
        "description": f.description,
        "controls": f.controls,
        "kind": f.kind,
        "bytes": f.bytes,
        "sha256": f.sha256,
        "spec": dict(f.spec or {}),
        "released_sha256": f.released_sha256,
        "released_bytes": f.released_bytes,
        "released": f.released_path is not None,
        "check_status": f.check_status,
    }
    if show_checks:
        view["checks"] = list(f.checks or [])
        view["ledger_risks"] = list(f.ledger_risks or [])
    return view


def may_review(actor: Principal) -> bool:
    return has_permission(actor, Permission.release_review)
