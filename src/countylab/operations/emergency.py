"""The emergency direct grant (紧急授权): a dataset to a project without an application.

The normal path is 无场景不授权: scenario → application → approvals → agreement → authorisation.
A direct grant bypasses every one of those checks, so it exists only for emergencies: only an
admin (``grant.emergency``) may make one, with a written reason and an end date, it is audited
as ``grant.emergency`` and every one of them is listed in the disclosure report.  The grade
policy still holds (核心数据 is never granted).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit, notify
from countylab.errors import Conflict, NotFound, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission, Role
from countylab.operations.enforcement import beijing_today
from countylab.storage.authorisation_models import GrantTerms
from countylab.storage.models import Dataset, Grant, Project, utcnow

MIN_REASON = 10  # characters: "urgent" is not a reason
MAX_DAYS = 90  # an emergency is short; anything longer goes through an application


def grant(
    session: Session,
    actor: Principal,
    project_id: int,
    dataset_id: int,
    *,
    reason: str,
    ends_on: date | None,
    now: datetime | None = None,
) -> Grant:
    target = f"project:{project_id}"
    authorize(actor, Permission.grant_emergency, target=target)
    when = now or utcnow()
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise ValidationFailed(
            f"紧急授权须写明理由（至少 {MIN_REASON} 个字）：为何不能走用数申请",
            f"An emergency grant needs a written reason (at least {MIN_REASON} characters): "
            "why the application path cannot be used",
            field="reason",
        )
    if len(reason) > 2000:
        raise ValidationFailed("理由最多 2000 字", "Reason: at most 2000 characters", field="reason")
    today = beijing_today(when)
    if ends_on is None:
        raise ValidationFailed(
            "紧急授权须设定结束日期", "An emergency grant needs an end date", field="ends_on"
        )
    if ends_on < today or (ends_on - today).days > MAX_DAYS:
        raise ValidationFailed(
            f"结束日期须在今天（{today}）到 {MAX_DAYS} 天之内",
            f"The end date must be between today ({today}) and {MAX_DAYS} days ahead",
            field="ends_on",
        )
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"项目 {project_id} 不存在", f"Project {project_id} not found")
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"数据集 {dataset_id} 不存在", f"Dataset {dataset_id} not found", field="dataset_id")
    if dataset.grade == "core":
        raise ValidationFailed(
            "核心数据不得授权给外部项目", "Core data cannot be granted to projects", dataset_id=dataset.id
        )
    exists = session.execute(
        select(Grant).where(Grant.project_id == project_id, Grant.dataset_id == dataset_id)
    ).scalar_one_or_none()
    if exists:
        raise Conflict("该数据集已授权给此项目", "This dataset is already granted to the project")
    row = Grant(
        project_id=project_id, dataset_id=dataset_id, granted_by=actor.user_id, note=f"紧急授权：{reason}"
    )
    session.add(row)
    session.flush()
    session.add(
        GrantTerms(
            grant_id=row.id,
            kind="emergency",
            channels=None,
            columns=None,
            ends_on=ends_on,
            reason=reason,
            project_id=project_id,
            dataset_id=dataset_id,
            granted_by=actor.user_id,
            granted_at=when,
        )
    )
    session.flush()
    audit.record(
        session,
        actor,
        "grant.emergency",
        target,
        dataset_id=dataset_id,
        dataset=dataset.name,
        reason=reason,
        ends_on=ends_on.isoformat(),
    )
    notify.emit(
        session,
        "grant.emergency",
        recipients=notify.to_roles(Role.steward.value) | notify.to_roles(Role.operator.value),
        target=target,
        actor_id=actor.user_id,
        project=project.title,
        dataset=dataset.title,
        reason=reason,
    )
    return row


def record_system(session: Session, row: Grant, note: str) -> None:
    """The lab's own system-internal grants (a showcase budget project …): listed as such."""
    session.add(
        GrantTerms(
            grant_id=row.id,
            kind="system",
            channels=None,
            columns=None,
            ends_on=None,
            reason=note,
            project_id=row.project_id,
            dataset_id=row.dataset_id,
            granted_by=None,
            granted_at=utcnow(),
        )
    )
    session.flush()
