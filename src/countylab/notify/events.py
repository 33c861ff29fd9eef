"""``emit``: record a notification in the caller's transaction, with its resolved recipients.

Recipients are resolved when the event happens (who holds the role *now*), so a checker who
joins next week does not receive last month's requests, and a user removed from a project
stops receiving its events.  The actor never notifies themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from countylab.storage.models import ProjectMember, User, UserRole, utcnow
from countylab.storage.notify_models import Notification, NotificationRecipient

#: pages a target opens, by the target's kind (``release:12`` -> the request's page)
_LINKS = {
    "release": "/airlock/requests/{id}",
    "job": "/jobs/{id}",
    "model": "/models/{id}",
    "dataset": "/datasets/{id}",
    "project": "/projects/{id}",
}


@dataclass(frozen=True)
class Recipients:
    """Who receives a notification: the union of ``users``, the members of ``project_id`` and
    the holders of ``roles`` (only in ``org_id`` when given), less ``exclude_users`` and, for
    independent review, less the members of ``exclude_project``."""

    users: frozenset[int] = frozenset()
    roles: frozenset[str] = frozenset()
    org_id: int | None = None
    project_id: int | None = None
    exclude_users: frozenset[int] = frozenset()
    exclude_project: int | None = None

    def __or__(self, other: Recipients) -> Recipients:
        if (self.roles and other.roles and self.org_id != other.org_id) or (
            self.project_id and other.project_id and self.project_id != other.project_id
        ):
            raise ValueError("cannot merge recipients of two organisations or two projects")
        return Recipients(
            users=self.users | other.users,
            roles=self.roles | other.roles,
            org_id=self.org_id if self.roles else other.org_id,
            project_id=self.project_id or other.project_id,
            exclude_users=self.exclude_users | other.exclude_users,
            exclude_project=self.exclude_project or other.exclude_project,
        )


def to_users(*user_ids: int | None) -> Recipients:
    return Recipients(users=frozenset(u for u in user_ids if u is not None))


def to_roles(*roles: str, org_id: int | None = None, exclude_project: int | None = None) -> Recipients:
    return Recipients(roles=frozenset(str(r) for r in roles), org_id=org_id, exclude_project=exclude_project)


def to_project(project_id: int) -> Recipients:
    return Recipients(project_id=project_id)


def resolve(session: Session, recipients: Recipients) -> set[int]:
    """The active users a notification goes to."""
    found: set[int] = set(recipients.users)
    if recipients.project_id is not None:
        found |= set(
            session.execute(
                select(ProjectMember.user_id).where(ProjectMember.project_id == recipients.project_id)
            ).scalars()
        )
    if recipients.roles:
        q = select(UserRole.user_id).join(User, User.id == UserRole.user_id)
        q = q.where(UserRole.role.in_(sorted(recipients.roles)))
        if recipients.org_id is not None:
            q = q.where(User.org_id == recipients.org_id)
        found |= set(session.execute(q).scalars())
    found -= recipients.exclude_users
    if recipients.exclude_project is not None:
        found -= set(
            session.execute(
                select(ProjectMember.user_id).where(ProjectMember.project_id == recipients.exclude_project)
            ).scalars()
        )
    if not found:
        return found
    active = session.execute(select(User.id).where(User.id.in_(sorted(found)), User.is_active.is_(True)))
    return set(active.scalars())


def link_of(target: str) -> str:
    kind, _, ident = target.partition(":")
    pattern = _LINKS.get(kind)
    return pattern.format(id=ident) if pattern and ident.isdigit() else ""


def emit(
    session: Session,
    kind: str,
    *,
    recipients: Recipients,
    target: str = "",
    link: str | None = None,
    actor_id: int | None = None,
    **facts: Any,
) -> Notification:
    """Record one notification inside the caller's transaction (see the module docstring).

    ``facts`` are the words of the message (a title, a project's name…): JSON values, never
    data of the residents.  ``actor_id`` is left out of the recipients."""
    users = resolve(session, recipients)
    if actor_id is not None:
        users.discard(actor_id)
    n = Notification(
        kind=kind,
        target=target[:200],
        link=(link if link is not None else link_of(target))[:300],
        facts=_plain(facts),
        actor_id=actor_id,
        dispatched=False,
        created_at=utcnow(),
    )
    session.add(n)
    session.flush()
    session.add_all(NotificationRecipient(notification_id=n.id, user_id=u) for u in sorted(users))
    session.flush()
    return n


def _plain(facts: dict[str, Any]) -> dict[str, Any]:
    """Facts as JSON scalars (str, int, float, bool, None) or ``{lang: text}`` pairs; anything
    else becomes its text."""
    out: dict[str, Any] = {}
    for key, value in facts.items():
        if isinstance(value, dict):
            out[key] = {str(k): str(v) for k, v in value.items()}
        else:
            out[key] = value if value is None or isinstance(value, str | int | float | bool) else str(value)
    return out


def settle(session: Session, target: str, *kinds: str) -> int:
    """The work a notification asked for is done (the request decided, the grade confirmed):
    mark it read for everyone who has not read it, so the header counts only what still
    matters.  Not audited: bookkeeping of the lab, not anyone's action."""
    ids = select(Notification.id).where(Notification.target == target, Notification.kind.in_(kinds))
    result = session.execute(
        update(NotificationRecipient)
        .where(NotificationRecipient.read_at.is_(None), NotificationRecipient.notification_id.in_(ids))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def recipients_of(session: Session, notification_id: int) -> list[int]:
    return list(
        session.execute(
            select(NotificationRecipient.user_id).where(
                NotificationRecipient.notification_id == notification_id
            )
        ).scalars()
    )
