"""Subscriptions to new scenarios by field (订阅): companies hear when a scenario opens.

A user subscribes to fields (``""`` means every field).  When a scenario becomes open
(collecting: published, or a proposal accepted) every subscriber who may see it gets a
notification, in the same transaction as the change (``countylab.notify``).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from countylab import notify
from countylab.audit import log as audit
from countylab.errors import ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.operations.scenarios import FIELDS, IN_DOMAIN_KINDS, field_name
from countylab.storage.models import Org, User, utcnow
from countylab.storage.operations_models import Scenario, ScenarioSubscription


def _check_field(field: str) -> None:
    if field and field not in FIELDS:
        raise ValidationFailed(
            f"领域“{field}”不在清单中", f"Field {field!r} is not in the list", field="field"
        )


def fields_of(session: Session, user_id: int) -> list[str]:
    return sorted(
        session.execute(
            select(ScenarioSubscription.field).where(ScenarioSubscription.user_id == user_id)
        ).scalars()
    )


def subscribe(session: Session, actor: Principal, fields: list[str]) -> list[str]:
    """Set the caller's subscribed fields to exactly ``fields`` (idempotent)."""
    authorize(actor, Permission.scenario_subscribe, target=f"user:{actor.user_id}")
    for f in fields:
        _check_field(f)
    if actor.user_id is None:
        raise ValidationFailed("系统账号不能订阅", "The system account cannot subscribe")
    wanted = sorted(set(fields))
    had = fields_of(session, actor.user_id)
    session.execute(delete(ScenarioSubscription).where(ScenarioSubscription.user_id == actor.user_id))
    session.add_all(ScenarioSubscription(user_id=actor.user_id, field=f, created_at=utcnow()) for f in wanted)
    session.flush()
    audit.record(session, actor, "scenario.subscribe", f"user:{actor.user_id}", fields=wanted, before=had)
    return wanted


def _subscribers(session: Session, sc: Scenario, actor: Principal) -> set[int]:
    """Active subscribers of ``sc``'s field (or of every field) who may see it, not the actor."""
    q = (
        select(ScenarioSubscription.user_id, Org.kind)
        .join(User, User.id == ScenarioSubscription.user_id)
        .outerjoin(Org, Org.id == User.org_id)
        .where(ScenarioSubscription.field.in_([sc.field, ""]), User.is_active.is_(True))
    )
    users = {
        uid for uid, kind in session.execute(q).all() if sc.visibility == "public" or kind in IN_DOMAIN_KINDS
    }
    users.discard(actor.user_id or -1)
    return users


def announce(session: Session, sc: Scenario, actor: Principal) -> int:
    """Notify the subscribers of ``sc``'s field that it is open; internal scenarios only reach
    subscribers inside the domain.  Returns how many were notified."""
    users = _subscribers(session, sc, actor)
    if not users:
        return 0
    notify.emit(
        session,
        "scenario.open",
        recipients=notify.to_users(*sorted(users)),
        target=f"scenario:{sc.id}",
        link=f"/scenarios/{sc.id}",
        actor_id=actor.user_id,
        title=sc.title,
        field={"zh-CN": field_name(sc.field), "en": field_name(sc.field, "en")},
        until=sc.apply_until.isoformat() if sc.apply_until else "",
    )
    return len(users)


def announce_edit(session: Session, sc: Scenario, actor: Principal, *, version: int, reason: str) -> int:
    """Notify the subscribers of ``sc``'s field that a published scenario was edited (a new
    version, with the reason), and the organisations with an application to it in progress.
    Returns how many were notified."""
    from countylab.operations.states import FINAL
    from countylab.storage.operations_models import Application

    users = _subscribers(session, sc, actor)
    applicants = session.execute(
        select(Application.applicant_id).where(
            Application.scenario_id == sc.id, Application.status.not_in([s.value for s in FINAL])
        )
    ).scalars()
    users |= {uid for uid in applicants if uid != actor.user_id}
    if not users:
        return 0
    notify.emit(
        session,
        "scenario.updated",
        recipients=notify.to_users(*sorted(users)),
        target=f"scenario:{sc.id}",
        link=f"/scenarios/{sc.id}",
        actor_id=actor.user_id,
        title=sc.title,
        version=str(version),
        reason=reason,
    )
    return len(users)
