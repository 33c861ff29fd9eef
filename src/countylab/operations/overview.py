"""The operator's view (运营看板) and every reviewer's queue (待我审批), computed from live state.

Nothing here is stored: counts by stage, the time each step took (median and maximum, from the
step rows' opened/decided times), overdue steps and the most requested datasets are read from
the workflow's own rows, so the view cannot drift from what happened.  The same rows make the
Excel export (one sheet per table, :func:`table`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from countylab.identity.access import Principal
from countylab.identity.roles import Role
from countylab.operations.states import ApplicationStatus
from countylab.operations.workflow_config import load, version_at
from countylab.storage.models import Dataset, Org
from countylab.storage.operations_models import Application, ApplicationDataset
from countylab.storage.workflow_models import ApprovalExpert, ApprovalStep, Objection, PublicNotice

STAGES = (
    "submitted",
    "consent",
    "security",
    "expert",
    "final",
    "publicising",
    "returned",
    "approved",
    "signing",
    "authorised",
    "rejected",
    "withdrawn",
)


@dataclass(frozen=True)
class Waiting:
    """One step waiting for someone (a row of the queue, the stage lists and the overdue list)."""

    application_id: int
    number: str
    title: str
    organisation: str
    kind: str  # precheck | consent | security | expert | final | objection | notice
    step_id: int | None  # None for the pre-check (no row before the decision) and objections
    org_id: int | None  # a consent's department
    since: datetime | None
    due_at: datetime | None
    overdue: bool
    detail: str = ""  # a consent's department name, an objection's id …


def _orgs(session: Session) -> dict[int, str]:
    return {o.id: o.name for o in session.execute(select(Org)).scalars()}


def waiting(session: Session, *, now: datetime) -> list[Waiting]:
    """Every step waiting now: pre-checks (derived from ``submitted``) and open step rows."""
    orgs = _orgs(session)
    out: list[Waiting] = []
    for app in session.execute(
        select(Application)
        .where(Application.status == ApplicationStatus.submitted.value)
        .order_by(Application.id)
    ).scalars():
        since = _aware(app.submitted_at or app.updated_at)
        due = load(session, version_at(session, app.submitted_at)).due("precheck", since)
        out.append(
            Waiting(
                app.id,
                app.number,
                app.title,
                orgs.get(app.org_id, ""),
                "precheck",
                None,
                None,
                since,
                due,
                due < now,
            )
        )
    rows = session.execute(
        select(ApprovalStep, Application)
        .join(Application, Application.id == ApprovalStep.application_id)
        .where(ApprovalStep.status == "open", Application.status == ApplicationStatus.in_review.value)
        .order_by(ApprovalStep.due_at, ApprovalStep.id)
    ).all()
    for step, app in rows:
        step_due = _aware(step.due_at) if step.due_at is not None else None
        out.append(
            Waiting(
                app.id,
                app.number,
                app.title,
                orgs.get(app.org_id, ""),
                step.kind,
                step.id,
                step.org_id,
                step.opened_at,
                step_due,
                step_due is not None and step_due < now,
                orgs.get(step.org_id or 0, ""),
            )
        )
    for obj, _notice, app in session.execute(
        select(Objection, PublicNotice, Application)
        .join(PublicNotice, PublicNotice.id == Objection.notice_id)
        .join(Application, Application.id == PublicNotice.application_id)
        .where(Objection.status == "open")
        .order_by(Objection.id)
    ).all():
        out.append(
            Waiting(
                app.id,
                app.number,
                app.title,
                orgs.get(app.org_id, ""),
                "objection",
                None,
                None,
                obj.filed_at,
                None,
                False,
                str(obj.id),
            )
        )
    for notice, app in session.execute(
        select(PublicNotice, Application)
        .join(Application, Application.id == PublicNotice.application_id)
        .where(PublicNotice.status == "open", PublicNotice.ends_at <= now)
    ).all():
        out.append(
            Waiting(
                app.id,
                app.number,
                app.title,
                orgs.get(app.org_id, ""),
                "notice",
                None,
                None,
                notice.ends_at,
                None,
                False,
                str(notice.id),
            )
        )
    return out


def overdue_steps(session: Session, *, now: datetime) -> list[Waiting]:
    return sorted((w for w in waiting(session, now=now) if w.overdue), key=lambda w: w.due_at or now)


def queue(session: Session, principal: Principal, *, now: datetime) -> list[Waiting]:
    """What waits for ``principal``: their role's steps, a consent only of their department, an
    expert's assigned reviews not yet voted, never an application of their own organisation."""
    roles = principal.roles
    assigned: set[int] = set()
    if Role.expert in roles and principal.user_id is not None:
        assigned = set(
            session.execute(
                select(ApprovalExpert.step_id).where(
                    ApprovalExpert.user_id == principal.user_id, ApprovalExpert.decision.is_(None)
                )
            ).scalars()
        )
    own_org = {a: o for a, o in session.execute(select(Application.id, Application.org_id)).all()}
    mine: list[Waiting] = []
    for w in waiting(session, now=now):
        if principal.org_id is not None and own_org.get(w.application_id) == principal.org_id:
            continue
        take = (
            (w.kind in ("precheck", "objection", "notice") and Role.operator in roles)
            or (w.kind == "consent" and Role.provider in roles and w.org_id == principal.org_id)
            or (w.kind == "security" and Role.steward in roles)
            or (w.kind == "final" and Role.leader in roles)
            or (w.kind == "expert" and (w.step_id in assigned or Role.operator in roles))
        )
        if take:
            mine.append(w)
    mine.sort(key=lambda w: (not w.overdue, w.due_at or w.since or now))
    return mine


@dataclass(frozen=True)
class StageCount:
    stage: str
    count: int
    applications: list[tuple[int, str, str]]  # id, number, title


def by_stage(session: Session, *, now: datetime) -> list[StageCount]:
    """Applications by stage: the review steps open now for ``in_review``, else the status."""
    lists: dict[str, list[tuple[int, str, str]]] = {s: [] for s in STAGES}
    reviewing: dict[int, set[str]] = {}
    for w in waiting(session, now=now):
        if w.kind in ("consent", "security", "expert", "final"):
            reviewing.setdefault(w.application_id, set()).add(w.kind)
    for app in session.execute(
        select(Application)
        .where(Application.status != ApplicationStatus.draft.value)
        .order_by(Application.id)
    ).scalars():
        if app.status == ApplicationStatus.in_review.value:
            for kind in sorted(reviewing.get(app.id, set())):
                lists[kind].append((app.id, app.number, app.title))
        elif app.status in lists:
            lists[app.status].append((app.id, app.number, app.title))
    return [StageCount(s, len(v), v) for s, v in lists.items()]


@dataclass(frozen=True)
class StageTime:
    kind: str
    decided: int
    median_days: float | None
    max_days: float | None


def stage_times(session: Session) -> list[StageTime]:
    """How long each kind of step took, from opening to decision, in days."""
    spans: dict[str, list[float]] = {
        k: [] for k in ("precheck", "consent", "security", "expert", "final", "notice")
    }
    for step in session.execute(
        select(ApprovalStep).where(ApprovalStep.decided_at.is_not(None), ApprovalStep.opened_at.is_not(None))
    ).scalars():
        if step.kind in spans and step.decided_at is not None and step.opened_at is not None:
            spans[step.kind].append(_days(step.decided_at, step.opened_at))
    for n in session.execute(select(PublicNotice).where(PublicNotice.closed_at.is_not(None))).scalars():
        if n.closed_at is not None:
            spans["notice"].append(_days(n.closed_at, n.starts_at))
    return [
        StageTime(k, len(v), round(statistics.median(v), 2) if v else None, round(max(v), 2) if v else None)
        for k, v in spans.items()
    ]


def _days(end: datetime, start: datetime) -> float:
    return max(0.0, (_aware(end) - _aware(start)).total_seconds() / 86400)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Requested:
    dataset_id: int
    title: str
    department: str
    grade: str
    applications: int


def most_requested(session: Session, *, limit: int = 10) -> list[Requested]:
    """Datasets by the number of applications (drafts excluded) that ask for them."""
    n = func.count(ApplicationDataset.application_id)
    rows = session.execute(
        select(Dataset.id, Dataset.title, Org.name, Dataset.grade, n)
        .join(ApplicationDataset, ApplicationDataset.dataset_id == Dataset.id)
        .join(Application, Application.id == ApplicationDataset.application_id)
        .join(Org, Org.id == Dataset.org_id)
        .where(Application.status != ApplicationStatus.draft.value)
        .group_by(Dataset.id, Dataset.title, Org.name, Dataset.grade)
        .order_by(n.desc(), Dataset.id)
        .limit(limit)
    ).all()
    return [Requested(int(i), str(t), str(o), str(g), int(c)) for i, t, o, g, c in rows]


# -- export ------------------------------------------------------------------------------------

TABLES = ("applications", "stage_times", "overdue", "datasets")


def table(session: Session, name: str, *, now: datetime) -> tuple[pa.Table, dict[str, str]]:
    """One table of the view as Arrow, with its Chinese headers (for ``table_to_xlsx``)."""
    from countylab.labels import bjtime

    if name == "applications":
        stage_of: dict[int, str] = {}
        for sc in by_stage(session, now=now):
            for app_id, _, _ in sc.applications:
                stage_of[app_id] = "、".join(filter(None, [stage_of.get(app_id, ""), sc.stage]))
        orgs = _orgs(session)
        apps = list(
            session.execute(
                select(Application)
                .where(Application.status != ApplicationStatus.draft.value)
                .order_by(Application.id)
            ).scalars()
        )
        late = {w.application_id for w in overdue_steps(session, now=now)}
        data = {
            "number": [a.number for a in apps],
            "title": [a.title for a in apps],
            "organisation": [orgs.get(a.org_id, "") for a in apps],
            "purpose": [a.purpose for a in apps],
            "stage": [stage_of.get(a.id, a.status) for a in apps],
            "submitted_at": [bjtime(a.submitted_at) for a in apps],
            "overdue": ["是" if a.id in late else "" for a in apps],
        }
        heads = {
            "number": "申请编号",
            "title": "申请名称",
            "organisation": "申请单位",
            "purpose": "用途",
            "stage": "所处环节",
            "submitted_at": "提交时间",
            "overdue": "超期",
        }
        return pa.table(data), heads
    if name == "stage_times":
        times = stage_times(session)
        return pa.table(
            {
                "kind": [t.kind for t in times],
                "decided": [t.decided for t in times],
                "median_days": pa.array([t.median_days for t in times], pa.float64()),
                "max_days": pa.array([t.max_days for t in times], pa.float64()),
            }
        ), {
            "kind": "环节",
            "decided": "已办件数",
            "median_days": "用时中位数（天）",
            "max_days": "最长用时（天）",
        }
    if name == "overdue":
        rows = overdue_steps(session, now=now)
        return pa.table(
            {
                "number": [w.number for w in rows],
                "title": [w.title for w in rows],
                "kind": [w.kind for w in rows],
                "department": [w.detail for w in rows],
                "due_at": [bjtime(w.due_at) for w in rows],
                "days_over": pa.array(
                    [round(_days(now, w.due_at), 1) if w.due_at else None for w in rows], pa.float64()
                ),
            }
        ), {
            "number": "申请编号",
            "title": "申请名称",
            "kind": "环节",
            "department": "部门",
            "due_at": "办理期限",
            "days_over": "超期天数",
        }
    if name == "datasets":
        top = most_requested(session, limit=100)
        return pa.table(
            {
                "title": [r.title for r in top],
                "department": [r.department for r in top],
                "grade": [r.grade for r in top],
                "applications": [r.applications for r in top],
            }
        ), {"title": "数据集", "department": "所属部门", "grade": "分级", "applications": "申请次数"}
    from countylab.errors import ValidationFailed

    raise ValidationFailed(
        f"没有名为 {name} 的表（可选：{'、'.join(TABLES)}）",
        f"no table {name!r} (one of {', '.join(TABLES)})",
        field="table",
    )
