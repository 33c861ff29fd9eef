"""Accreditation of safe people (培训合格): training records with an expiry date.

The operator records that a person passed a course (数据安全培训 …), with the certificate number
and the dates.  Members of an authorised project must hold a *current* record: one whose
``passed_on <= on <= expires_on``.  :func:`require_current` is the one check that the
application's submission and the authorisation (engineer C) call; its refusal names every
person without a current record and when theirs expired (or that there is none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.audit import log as audit
from countylab.errors import NotFound, PermissionDenied, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.storage.models import User, utcnow
from countylab.storage.operations_models import Accreditation

#: a record this close to its expiry is flagged on the page
WARN_DAYS = 30


def current(session: Session, user_id: int, on: date) -> Accreditation | None:
    """The record valid on ``on`` that lasts longest, or None."""
    return session.execute(
        select(Accreditation)
        .where(
            Accreditation.user_id == user_id,
            Accreditation.passed_on <= on,
            Accreditation.expires_on >= on,
        )
        .order_by(Accreditation.expires_on.desc(), Accreditation.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def latest(session: Session, user_id: int) -> Accreditation | None:
    return session.execute(
        select(Accreditation)
        .where(Accreditation.user_id == user_id)
        .order_by(Accreditation.expires_on.desc(), Accreditation.id.desc())
        .limit(1)
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Missing:
    user_id: int
    name: str
    expired_on: date | None  # None: none on record


def missing(session: Session, user_ids: list[int] | tuple[int, ...], on: date) -> list[Missing]:
    out: list[Missing] = []
    for uid in dict.fromkeys(user_ids):
        if current(session, uid, on) is not None:
            continue
        user = session.get(User, uid)
        last = latest(session, uid)
        name = f"{user.display_name}（{user.username}）" if user else f"#{uid}"
        out.append(Missing(uid, name, last.expires_on if last else None))
    return out


def require_current(session: Session, user_ids: list[int] | tuple[int, ...], on: date) -> None:
    """Raise :class:`PermissionDenied` naming each person without a current accreditation."""
    gaps = missing(session, user_ids, on)
    if not gaps:
        return
    zh = "；".join(
        f"{m.name} 培训合格已于 {m.expired_on.isoformat()} 过期"
        if m.expired_on
        else f"{m.name} 无培训合格记录"
        for m in gaps
    )
    en = "; ".join(
        f"{m.name}: accreditation expired on {m.expired_on.isoformat()}"
        if m.expired_on
        else f"{m.name}: no accreditation on record"
        for m in gaps
    )
    raise PermissionDenied(
        f"以下人员没有有效的培训合格记录：{zh}",
        f"Without a current accreditation: {en}",
        reason="accreditation",
        users=[m.user_id for m in gaps],
    )


def record(
    session: Session,
    actor: Principal,
    *,
    user_id: int,
    course: str,
    certificate_no: str,
    passed_on: date,
    expires_on: date,
) -> Accreditation:
    authorize(actor, Permission.accreditation_manage, target=f"user:{user_id}")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"用户 #{user_id} 不存在", f"User #{user_id} not found", field="user_id")
    if not course.strip():
        raise ValidationFailed("请填写培训课程", "Name the course", field="course")
    if expires_on <= passed_on:
        raise ValidationFailed(
            "有效期截止日期必须晚于合格日期",
            "The expiry date must be after the pass date",
            field="expires_on",
        )
    if passed_on > utcnow().date() + timedelta(days=1):
        raise ValidationFailed(
            "合格日期不能在将来", "The pass date cannot be in the future", field="passed_on"
        )
    acc = Accreditation(
        user_id=user_id,
        course=course.strip()[:200],
        certificate_no=certificate_no.strip()[:60],
        passed_on=passed_on,
        expires_on=expires_on,
        recorded_by=actor.user_id,
        recorded_at=utcnow(),
    )
    session.add(acc)
    session.flush()
    audit.record(
        session,
        actor,
        "accreditation.record",
        f"user:{user_id}",
        course=acc.course,
        certificate_no=acc.certificate_no,
        passed_on=passed_on.isoformat(),
        expires_on=expires_on.isoformat(),
    )
    return acc


def list_all(session: Session, actor: Principal) -> list[tuple[Accreditation, User]]:
    authorize(actor, Permission.accreditation_manage, target="accreditations")
    rows = session.execute(
        select(Accreditation, User)
        .join(User, User.id == Accreditation.user_id)
        .order_by(Accreditation.expires_on, Accreditation.id)
    ).all()
    return [(r[0], r[1]) for r in rows]


def state(acc: Accreditation, on: date) -> str:
    """current | expiring (within WARN_DAYS) | expired | future."""
    if acc.passed_on > on:
        return "future"
    if acc.expires_on < on:
        return "expired"
    return "expiring" if acc.expires_on <= on + timedelta(days=WARN_DAYS) else "current"


def view(acc: Accreditation, user: User, on: date) -> dict[str, object]:
    return {
        "id": acc.id,
        "user_id": acc.user_id,
        "username": user.username,
        "display_name": user.display_name,
        "course": acc.course,
        "certificate_no": acc.certificate_no,
        "passed_on": acc.passed_on.isoformat(),
        "expires_on": acc.expires_on.isoformat(),
        "state": state(acc, on),
    }
