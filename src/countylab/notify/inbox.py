"""A user's notifications: the unread count, the list, read state and e-mail address."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from countylab import audit
from countylab.errors import NotFound, ValidationFailed
from countylab.identity.access import Principal
from countylab.notify.messages import describe
from countylab.storage.models import utcnow
from countylab.storage.notify_models import Notification, NotificationRecipient, NotifyContact

MAX_PAGE = 200


@dataclass(frozen=True)
class Item:
    id: int  # the notification's id
    kind: str
    target: str
    link: str
    facts: dict[str, Any]
    created_at: datetime
    read_at: datetime | None

    def text(self, lang: str) -> str:
        return describe(self.kind, self.facts, lang)

    def to_json(self, lang: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "link": self.link,
            "text": self.text(lang),
            "facts": self.facts,
            "created_at": self.created_at.isoformat(),
            "read": self.read_at is not None,
            "read_at": self.read_at.isoformat() if self.read_at else None,
        }


def unread_count(session: Session, user_id: int) -> int:
    """One count over the ``(user_id, read_at)`` index: cheap enough for every page's header."""
    q = select(func.count()).where(
        NotificationRecipient.user_id == user_id, NotificationRecipient.read_at.is_(None)
    )
    return int(session.scalar(q) or 0)


def items(
    session: Session, user_id: int, *, unread_only: bool = False, limit: int = 50, offset: int = 0
) -> list[Item]:
    q = (
        select(Notification, NotificationRecipient.read_at)
        .join(NotificationRecipient, NotificationRecipient.notification_id == Notification.id)
        .where(NotificationRecipient.user_id == user_id)
    )
    if unread_only:
        q = q.where(NotificationRecipient.read_at.is_(None))
    q = (
        q.order_by(NotificationRecipient.notification_id.desc())
        .limit(max(1, min(limit, MAX_PAGE)))
        .offset(max(0, offset))
    )
    return [
        Item(n.id, n.kind, n.target, n.link, dict(n.facts or {}), n.created_at, read_at)
        for n, read_at in session.execute(q).all()
    ]


def get(session: Session, user_id: int, notification_id: int) -> Item | None:
    """One of this user's notifications (None for anyone else's)."""
    row = session.execute(
        select(Notification, NotificationRecipient.read_at)
        .join(NotificationRecipient, NotificationRecipient.notification_id == Notification.id)
        .where(NotificationRecipient.user_id == user_id, Notification.id == notification_id)
    ).first()
    if row is None:
        return None
    n, read_at = row
    return Item(n.id, n.kind, n.target, n.link, dict(n.facts or {}), n.created_at, read_at)


def mark_read(session: Session, actor: Principal, notification_id: int) -> bool:
    """Mark one of the actor's notifications read; True when it was unread (idempotent)."""
    if actor.user_id is None:
        raise NotFound("没有这条通知", "No such notification")
    row = session.execute(
        select(NotificationRecipient).where(
            NotificationRecipient.notification_id == notification_id,
            NotificationRecipient.user_id == actor.user_id,
        )
    ).scalar_one_or_none()
    if row is None:  # someone else's notification reads as unknown: ids reveal nothing
        raise NotFound("没有这条通知", "No such notification", notification_id=notification_id)
    if row.read_at is not None:
        return False
    row.read_at = utcnow()
    audit.record(session, actor, "notification.read", f"notification:{notification_id}")
    return True


def mark_all_read(session: Session, actor: Principal) -> int:
    if actor.user_id is None:
        return 0
    result = session.execute(
        update(NotificationRecipient)
        .where(NotificationRecipient.user_id == actor.user_id, NotificationRecipient.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    audit.record(session, actor, "notification.read_all", f"user:{actor.user_id}", count=count)
    return count


def contact(session: Session, user_id: int) -> NotifyContact | None:
    return session.get(NotifyContact, user_id)


def set_contact(session: Session, actor: Principal, email: str, *, enabled: bool = True) -> NotifyContact:
    """The actor's own e-mail address for notifications (empty: none)."""
    if actor.user_id is None:
        raise ValidationFailed("系统账户没有邮箱", "The system account has no e-mail address")
    address = email.strip()
    if address and (len(address) > 254 or address.count("@") != 1 or any(c in address for c in " \r\n<>,;")):
        raise ValidationFailed(
            f"邮箱地址无效：{address[:60]}", f"Not a valid e-mail address: {address[:60]}", field="email"
        )
    row = session.get(NotifyContact, actor.user_id)
    if row is None:
        row = NotifyContact(user_id=actor.user_id, email=address, email_enabled=enabled, updated_at=utcnow())
        session.add(row)
    else:
        row.email, row.email_enabled, row.updated_at = address, enabled, utcnow()
    audit.record(session, actor, "notification.contact", f"user:{actor.user_id}", email_set=bool(address))
    return row
