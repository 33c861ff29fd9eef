"""Top-up requests: a project member asks for more privacy budget this period; the steward decides.

States (one direction only, written once): ``pending → approved`` or ``pending → refused``.  A
decided request never changes again (a second decision is a ``Conflict``), and nobody decides
their own request.  An approved top-up raises every ledger of the (project, dataset) for the
current renewal period only (``privacy_budgets.*_topup``, dropped at renewal); it never raises
the dataset-wide yearly cap, which stays the hard bound across all projects.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from countylab import audit
from countylab.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from countylab.identity.access import Principal, authorize, has_permission
from countylab.identity.projects import authorize_member
from countylab.identity.roles import Permission
from countylab.notify.hooks import topup_notice
from countylab.privacy import ledgers
from countylab.privacy.budget import _ensure, grade_limits
from countylab.privacy.ledgers import period_bounds
from countylab.storage.models import Dataset, Grant, Project, User, utcnow
from countylab.storage.privacy_models import PROJECT_WIDE, BudgetEntry, BudgetTopup, PrivacyBudget

PENDING, APPROVED, REFUSED = "pending", "approved", "refused"
TRANSITIONS = {PENDING: (APPROVED, REFUSED), APPROVED: (), REFUSED: ()}
MAX_REASON = 2000


def _finite(name: str, value: float, low: float, high: float, *, low_open: bool) -> float:
    ok = isinstance(value, int | float) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        raise ValidationFailed(
            f"{name} 必须是 {'大于' if low_open else '不小于'} {low:g}、不超过 {high:g} 的有限数",
            f"{name} must be a finite number {'>' if low_open else '>='} {low:g} and <= {high:g}",
            field=name,
            reason="range",
            low=low,
            high=high,
        )
    return float(value)


def request_topup(
    session: Session,
    actor: Principal,
    project_id: int,
    dataset_id: int,
    *,
    epsilon: float,
    delta: float = 0.0,
    reason: str,
) -> dict[str, Any]:
    """A project member asks for ``epsilon`` (and ``delta``) more on a granted dataset this period."""
    target = f"project:{project_id}"
    authorize_member(session, actor, Permission.query_run, project_id, target)
    grant = session.execute(
        select(Grant).where(Grant.project_id == project_id, Grant.dataset_id == dataset_id)
    ).scalar_one_or_none()
    if grant is None:
        raise NotFound(
            "该数据集未授权给此项目", "The dataset is not granted to this project", dataset_id=dataset_id
        )
    caps = grade_limits(grant.dataset)
    eps = _finite("epsilon", epsilon, 0.0, caps.epsilon_per_project, low_open=True)
    dlt = _finite("delta", delta, 0.0, caps.delta, low_open=False)
    text = (reason or "").strip()
    if not text or len(text) > MAX_REASON:
        raise ValidationFailed(
            f"请填写申请理由（不超过 {MAX_REASON} 字）",
            f"Give a reason (at most {MAX_REASON} characters)",
            field="reason",
        )
    row = BudgetTopup(
        project_id=project_id,
        dataset_id=dataset_id,
        requested_by=actor.user_id,
        epsilon=eps,
        delta=dlt,
        reason=text,
        status=PENDING,
        decision_note="",
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "budget.topup_requested",
        target,
        topup_id=row.id,
        dataset=grant.dataset.name,
        epsilon=eps,
        delta=dlt,
    )
    topup_notice(session, row, actor.user_id)
    return topup_view(session, row)


def decide_topup(
    session: Session,
    actor: Principal,
    topup_id: int,
    *,
    approve: bool,
    note: str = "",
    period: str = "month",
) -> dict[str, Any]:
    """Security officer: approve (the ledgers grow this period) or refuse a pending request."""
    row = session.get(BudgetTopup, topup_id)
    target = f"project:{row.project_id}" if row is not None else f"topup:{topup_id}"
    authorize(actor, Permission.budget_manage, target=target)
    if row is None:
        raise NotFound("追加预算申请不存在", "Top-up request not found", topup_id=topup_id)
    if actor.user_id is not None and row.requested_by == actor.user_id:
        raise PermissionDenied(
            "不能审批自己的申请",
            "Nobody decides their own request",
            permission=Permission.budget_manage.value,
            target=target,
            reason="own_request",
        )
    new = APPROVED if approve else REFUSED
    if new not in TRANSITIONS[row.status]:
        raise Conflict("该申请已处理", "The request has already been decided", status=row.status)
    now = utcnow()
    # claim the decision with a conditional UPDATE: two stewards deciding at once decide once
    claimed = session.execute(
        update(BudgetTopup)
        .where(BudgetTopup.id == row.id, BudgetTopup.status == PENDING)
        .values(status=new, decided_by=actor.user_id, decided_at=now, decision_note=(note or "")[:MAX_REASON])
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("该申请已处理", "The request has already been decided")
    ds = session.get(Dataset, row.dataset_id)
    assert ds is not None
    if approve:
        ledgers.renew(session, row.project_id, row.dataset_id, period, now)
        _ensure(session, row.project_id, row.dataset_id, PROJECT_WIDE, period)
        session.execute(
            update(PrivacyBudget)
            .where(PrivacyBudget.project_id == row.project_id, PrivacyBudget.dataset_id == row.dataset_id)
            .values(
                epsilon_topup=PrivacyBudget.epsilon_topup + row.epsilon,
                delta_topup=PrivacyBudget.delta_topup + row.delta,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(BudgetTopup)
            .where(BudgetTopup.id == row.id)
            .values(period_end=period_bounds(now, period)[1])
            .execution_options(synchronize_session=False)
        )
        session.add(
            BudgetEntry(
                project_id=row.project_id,
                dataset_id=row.dataset_id,
                user_id=PROJECT_WIDE,
                kind="topup",
                epsilon=row.epsilon,
                delta=row.delta,
                by_user=actor.user_id,
                at=now,
            )
        )
    audit.record(
        session,
        actor,
        f"budget.topup_{new}",
        target,
        topup_id=row.id,
        dataset=ds.name,
        epsilon=row.epsilon,
        delta=row.delta,
    )
    session.flush()
    session.expire_all()
    refreshed = session.get(BudgetTopup, row.id)
    assert refreshed is not None
    topup_notice(session, refreshed, actor.user_id)
    return topup_view(session, refreshed)


def list_topups(
    session: Session, actor: Principal, *, project_id: int | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Requests, newest first: one project's (its members and oversight) or all (the steward)."""
    q = select(BudgetTopup).order_by(BudgetTopup.id.desc()).limit(500)
    if project_id is None:
        authorize(actor, Permission.budget_manage, target="topups")
    else:
        from countylab.identity.projects import get_project

        get_project(session, actor, project_id)
        q = q.where(BudgetTopup.project_id == project_id)
    if status is not None:
        if status not in TRANSITIONS:
            raise ValidationFailed("状态无效", "unknown status", field="status")
        q = q.where(BudgetTopup.status == status)
    return [topup_view(session, r) for r in session.execute(q).scalars()]


def can_decide(actor: Principal) -> bool:
    return has_permission(actor, Permission.budget_manage)


def topup_view(session: Session, row: BudgetTopup) -> dict[str, Any]:
    ds = session.get(Dataset, row.dataset_id)
    project = session.get(Project, row.project_id)
    who = session.get(User, row.requested_by) if row.requested_by else None
    return {
        "id": row.id,
        "project_id": row.project_id,
        "project": project.slug if project else "",
        "dataset_id": row.dataset_id,
        "dataset": ds.name if ds else "",
        "requested_by": row.requested_by,
        "username": who.username if who else "",
        "epsilon": row.epsilon,
        "delta": row.delta,
        "reason": row.reason,
        "status": row.status,
        "decided_by": row.decided_by,
        "decision_note": row.decision_note,
        "period_end": row.period_end.isoformat() if row.period_end else None,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
    }
