"""What the application page, the API and the CLI show of an application's approval workflow,
and the one entry for a decision by step name (``precheck``, ``consent`` …), which the page, the
API and ``countylab review decide`` share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.identity.access import Principal, has_permission
from countylab.identity.roles import Permission, Role
from countylab.labels import bjtime, person
from countylab.operations import applications, publicity, workflow
from countylab.operations.overview import queue
from countylab.operations.states import ApplicationStatus
from countylab.operations.workflow import STEP_ZH, SecurityTerms
from countylab.storage.models import Org, User, UserRole
from countylab.storage.operations_models import Application
from countylab.storage.workflow_models import ApprovalExpert, ApprovalStep

STEP_EN = {
    "precheck": "Materials pre-check",
    "consent": "Department consent",
    "security": "Security review",
    "expert": "Expert review",
    "final": "Final approval",
}
STATUS_ZH = {
    "waiting": "未开始",
    "open": "办理中",
    "approved": "已通过",
    "refused": "不同意",
    "returned": "已退回",
    "closed": "已终止",
}


def _assigned_expert(session: Session, actor: Principal, app: Application) -> bool:
    if actor.user_id is None or Role.expert not in actor.roles:
        return False
    hit = session.execute(
        select(ApprovalExpert.step_id)
        .join(ApprovalStep, ApprovalStep.id == ApprovalExpert.step_id)
        .where(ApprovalStep.application_id == app.id, ApprovalExpert.user_id == actor.user_id)
        .limit(1)
    ).first()
    return hit is not None


if _assigned_expert not in applications.EXTRA_READERS:
    applications.EXTRA_READERS.append(_assigned_expert)


def _aware(ts: datetime | None) -> datetime | None:
    return None if ts is None else (ts if ts.tzinfo else ts.replace(tzinfo=UTC))


def step_name(kind: str, lang: str) -> str:
    return STEP_EN.get(kind, kind) if lang.startswith("en") else STEP_ZH.get(kind, kind)


def view(
    session: Session, app: Application, principal: Principal, *, now: datetime, lang: str = "zh-CN"
) -> dict[str, Any]:
    """Rounds of steps (each with its decision, reason, deadline, overdue flag), experts, notice,
    objections, and what ``principal`` may do now."""
    steps = workflow.steps_of(session, app.id)
    user_ids = {s.decided_by for s in steps if s.decided_by}
    experts: dict[int, list[ApprovalExpert]] = {}
    for s in steps:
        if s.kind == "expert":
            experts[s.id] = workflow.experts_of(session, s.id)
            user_ids |= {e.user_id for e in experts[s.id]}
    users = (
        {u.id: u for u in session.execute(select(User).where(User.id.in_(user_ids))).scalars()}
        if user_ids
        else {}
    )
    orgs = {o.id: o.name for o in session.execute(select(Org)).scalars()}

    def who(uid: int | None) -> str:
        u = users.get(uid or 0)
        return person(u.display_name, u.username) if u else ""

    mine = {(w.kind, w.step_id) for w in queue(session, principal, now=now) if w.application_id == app.id}
    rounds: dict[int, list[dict[str, Any]]] = {}
    for s in steps:
        due = _aware(s.due_at)
        rounds.setdefault(s.round, []).append(
            {
                "id": s.id,
                "kind": s.kind,
                "name": step_name(s.kind, lang),
                "department": orgs.get(s.org_id or 0, ""),
                "org_id": s.org_id,
                "stage": s.stage,
                "status": s.status,
                "status_name": STATUS_ZH.get(s.status, s.status) if not lang.startswith("en") else s.status,
                "opened_at": bjtime(s.opened_at),
                "due_at": bjtime(s.due_at),
                "due_iso": due.isoformat() if due else None,
                "overdue": s.status == "open" and due is not None and due < now,
                "decided_at": bjtime(s.decided_at),
                "decided_by": who(s.decided_by),
                "reason": s.reason,
                "details": s.details or {},
                "config_version": s.config_version,
                "experts": [
                    {"user_id": e.user_id, "name": who(e.user_id), "decision": e.decision, "reason": e.reason}
                    for e in experts.get(s.id, [])
                ],
                "mine": (s.kind, s.id) in mine,
            }
        )
    pre_due = None
    precheck_mine = ("precheck", None) in mine
    if app.status == ApplicationStatus.submitted:
        cfg = workflow.config_of(session, app)
        pre_due = cfg.due("precheck", _aware(app.submitted_at) or now)
    notice = publicity.notice_of(session, app.id)
    objections = publicity.objections_of(session, notice.id) if notice is not None else []
    filer_ids = {o.filed_by for o in objections if o.filed_by}
    expert_users: list[dict[str, Any]] = []
    if has_permission(principal, Permission.application_precheck) and any(
        s.kind == "expert" and s.status == "open" for s in steps
    ):
        expert_users = [
            {"id": u.id, "name": person(u.display_name, u.username)}
            for u in session.execute(
                select(User)
                .join(UserRole, UserRole.user_id == User.id)
                .where(UserRole.role == Role.expert.value, User.is_active.is_(True))
                .order_by(User.username)
            ).scalars()
            if u.org_id is None or u.org_id != app.org_id
        ]
    pairs = workflow.requested(session, app)
    dropped = [
        {
            "dataset_id": d["dataset_id"],
            "title": d["title"],
            "department": orgs.get(d["org_id"] or 0, ""),
            "reason": d["reason"],
            "decided_at": bjtime(d["decided_at"]),
            "round": d["round"],
        }
        for d in workflow.dropped_datasets(session, app.id)
    ]
    return {
        "application_id": app.id,
        "number": app.number,
        "status": app.status,
        "config_version": next((s.config_version for s in steps), None),
        "rounds": [{"round": r, "steps": rows} for r, rows in sorted(rounds.items())],
        "precheck": {
            "waiting": app.status == ApplicationStatus.submitted,
            "due_at": bjtime(pre_due) if pre_due else "",
            "overdue": pre_due is not None and pre_due < now,
            "mine": precheck_mine,
        },
        "notice": None
        if notice is None
        else {
            "id": notice.id,
            "status": notice.status,
            "starts_at": bjtime(notice.starts_at),
            "ends_at": bjtime(notice.ends_at),
            "over": (_aware(notice.ends_at) or now) <= now,
        },
        "objections": [
            {
                "id": o.id,
                "reason": o.reason,
                "status": o.status,
                "answer": o.answer,
                "outcome": o.outcome,
                "filed_at": bjtime(o.filed_at),
                "mine": o.filed_by == principal.user_id,
            }
            for o in objections
        ],
        "objection_filers": len(filer_ids),
        "expert_candidates": expert_users,
        "datasets": [
            {
                "id": d.id,
                "title": d.title,
                "grade": d.grade,
                "columns": ad.columns
                if ad.columns is not None
                else ([c["name"] for c in d.table_schema["columns"]] if d.table_schema else []),
            }
            for ad, d in pairs
        ],
        "dropped": dropped,
        "channels": list(app.channels or []),
        "can_answer": has_permission(principal, Permission.objection_answer),
        "can_object": notice is not None and notice.status == "open" and principal.user_id is not None,
    }


def decide(
    session: Session,
    principal: Principal,
    application_id: int,
    step: str,
    decision: str,
    reason: str,
    *,
    now: datetime,
    terms: SecurityTerms | None = None,
) -> dict[str, Any]:
    """A decision on the application's open step named ``step`` (for a consent: the caller's
    department's).  Returns the application's new status."""
    if step in workflow.STEP_PERMISSION:  # refuse the wrong role before looking at any state
        from countylab.identity.access import authorize

        authorize(principal, workflow.STEP_PERMISSION[step], target=f"application:{application_id}")
    app = workflow.get_application(session, application_id)
    if step == "precheck":
        workflow.precheck(session, principal, app.id, decision, reason, now=now)
    elif step == "expert":
        row = workflow.open_step(session, app, "expert")
        workflow.expert_vote(session, principal, row.id, decision, reason, now=now)
    elif step in ("consent", "security", "final"):
        row = workflow.open_step(session, app, step, principal)
        workflow.decide(session, principal, row.id, decision, reason, now=now, terms=terms)
    else:
        from countylab.errors import ValidationFailed

        raise ValidationFailed(
            f"未知的审批步骤：{step}（可选 precheck、consent、security、expert、final）",
            f"unknown step {step!r} (precheck, consent, security, expert, final)",
            field="step",
        )
    session.refresh(app)
    return {
        "application_id": app.id,
        "number": app.number,
        "status": app.status,
        "step": step,
        "decision": decision,
    }
