"""Organisations, users, API tokens and web sessions.

Every state-changing function takes the acting ``Principal``, checks permission through
``authorize`` and appends an audit event in the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from countylab import audit
from countylab.errors import Conflict, NotAuthenticated, NotFound, ValidationFailed
from countylab.identity import secrets as sec
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import OrgKind, Permission, Role
from countylab.storage.models import ApiToken, Org, Project, ProjectMember, User, UserRole, WebSession

_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime) -> datetime:
    """SQLite returns naive datetimes; everything we store is UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# -- principals -------------------------------------------------------------------------------


def principal_for(session: Session, user: User, via: str) -> Principal:
    memberships = session.execute(
        select(ProjectMember.project_id, ProjectMember.role)
        .join(Project, Project.id == ProjectMember.project_id)
        .where(ProjectMember.user_id == user.id, Project.status == "active")
    ).all()
    return Principal(
        user_id=user.id,
        username=user.username,
        roles=frozenset(Role(r) for r in user.role_names),
        org_id=user.org_id,
        project_ids=frozenset(pid for pid, _ in memberships),
        owned_project_ids=frozenset(pid for pid, role in memberships if role == "owner"),
        via=via,
    )


# -- organisations ----------------------------------------------------------------------------


def create_org(session: Session, actor: Principal, *, name: str, kind: str) -> Org:
    authorize(actor, Permission.org_manage, target=f"org:{name}")
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed(
            "单位名称不能为空且不超过200字", "Organisation name must be 1-200 characters", field="name"
        )
    try:
        kind_enum = OrgKind(kind)
    except ValueError:
        raise ValidationFailed(
            f"未知的单位类型：{kind}",
            f"Unknown organisation kind: {kind}",
            field="kind",
            allowed=[k.value for k in OrgKind],
        ) from None
    if session.execute(select(Org).where(Org.name == name)).scalar_one_or_none():
        raise Conflict(f"单位“{name}”已存在", f"Organisation '{name}' already exists", field="name")
    org = Org(name=name, kind=kind_enum.value)
    session.add(org)
    session.flush()
    audit.record(session, actor, "org.create", f"org:{org.id}", name=name, kind=kind_enum.value)
    return org


def list_orgs(session: Session) -> list[Org]:
    return list(session.execute(select(Org).order_by(Org.kind, Org.name)).scalars())


def get_org(session: Session, org_id: int) -> Org:
    org = session.get(Org, org_id)
    if org is None:
        raise NotFound(f"单位 {org_id} 不存在", f"Organisation {org_id} not found")
    return org


# -- users ------------------------------------------------------------------------------------


def _parse_roles(roles: list[str]) -> list[Role]:
    out = []
    for r in roles:
        try:
            out.append(Role(r))
        except ValueError:
            raise ValidationFailed(
                f"未知的角色：{r}", f"Unknown role: {r}", field="roles", allowed=[x.value for x in Role]
            ) from None
    return sorted(set(out))


def create_user(
    session: Session,
    actor: Principal,
    *,
    username: str,
    password: str,
    display_name: str,
    roles: list[str],
    org_id: int | None = None,
    lang: str = "zh-CN",
) -> User:
    authorize(actor, Permission.user_manage, target=f"user:{username}")
    if not _USERNAME.match(username):
        raise ValidationFailed(
            "用户名须以小写字母开头，只含小写字母、数字和 _ . -（2–64位）",
            "Username must start with a lowercase letter and contain only a-z 0-9 _ . - (2-64 chars)",
            field="username",
        )
    if len(password) < sec.MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"密码至少{sec.MIN_PASSWORD_LENGTH}位",
            f"Password must be at least {sec.MIN_PASSWORD_LENGTH} characters",
            field="password",
        )
    role_list = _parse_roles(roles)
    if org_id is not None:
        get_org(session, org_id)
    if session.execute(select(User).where(User.username == username)).scalar_one_or_none():
        raise Conflict(f"用户名“{username}”已被使用", f"Username '{username}' is taken", field="username")
    user = User(
        username=username,
        display_name=display_name.strip() or username,
        password_hash=sec.hash_password(password),
        org_id=org_id,
        is_active=True,
        lang=lang if lang in ("zh-CN", "en") else "zh-CN",
        roles=[UserRole(role=r.value) for r in role_list],
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor,
        "user.create",
        f"user:{user.id}",
        username=username,
        roles=[r.value for r in role_list],
        org_id=org_id,
    )
    return user


def set_roles(session: Session, actor: Principal, user_id: int, roles: list[str]) -> User:
    authorize(actor, Permission.user_manage, target=f"user:{user_id}")
    user = get_user(session, user_id)
    role_list = _parse_roles(roles)
    before = sorted(user.role_names)
    user.roles = [UserRole(role=r.value) for r in role_list]
    session.flush()
    audit.record(
        session,
        actor,
        "user.roles",
        f"user:{user.id}",
        before=before,
        after=[r.value for r in role_list],
    )
    return user


def set_active(
    session: Session, actor: Principal, user_id: int, active: bool, *, revoke_tokens: bool = True
) -> User:
    """Activate or deactivate a user.  Deactivation ends every web session of the user at once
    and, unless ``revoke_tokens`` is false, revokes their API tokens for good (a deactivated
    user's tokens are refused anyway; keeping them only spares reissuing after a suspension)."""
    authorize(actor, Permission.user_manage, target=f"user:{user_id}")
    user = get_user(session, user_id)
    if actor.user_id == user_id and not active:
        raise ValidationFailed("不能停用自己的账号", "You cannot deactivate your own account")
    user.is_active = active
    details: dict[str, int] = {}
    if not active:
        details["sessions_ended"] = end_sessions(session, user_id)
        if revoke_tokens:
            details["tokens_revoked"] = revoke_all_tokens(session, user_id)
    audit.append(
        session,
        actor_id=actor.user_id,
        actor=actor.username,
        action="user.activate" if active else "user.deactivate",
        target=f"user:{user_id}",
        details=details,
    )
    return user


def end_sessions(session: Session, user_id: int, *, keep_sid: str | None = None) -> int:
    """Delete the user's web sessions except the one whose id is ``keep_sid``; how many ended."""
    keep = sec.digest(keep_sid) if keep_sid else None
    ended = 0
    for ws in session.execute(select(WebSession).where(WebSession.user_id == user_id)).scalars():
        if ws.id_hash != keep:
            session.delete(ws)
            ended += 1
    return ended


def revoke_all_tokens(session: Session, user_id: int) -> int:
    """Revoke every live API token of the user; how many were live."""
    now = _now()
    revoked = 0
    live = select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    for tok in session.execute(live).scalars():
        tok.revoked_at = now
        revoked += 1
    return revoked


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"用户 {user_id} 不存在", f"User {user_id} not found")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(User.username)).scalars())


def change_password(
    session: Session,
    actor: Principal,
    *,
    old: str,
    new: str,
    current_sid: str | None = None,
    revoke_tokens: bool = False,
) -> dict[str, int]:
    """The user changes their own password.  Every other web session of theirs ends (someone who
    knew the old password is logged out); the one of ``current_sid`` stays.  ``revoke_tokens``
    also revokes all their API tokens, which the old password may have been used to create.
    Returns how many sessions ended and tokens were revoked."""
    if actor.user_id is None:
        raise NotAuthenticated("请先登录", "Please log in first")
    user = get_user(session, actor.user_id)
    if not sec.verify_password(user.password_hash, old):
        raise ValidationFailed("原密码不正确", "The current password is wrong", field="old")
    return _set_password(session, actor, user, new, "user.password", current_sid, revoke_tokens)


def reset_password(
    session: Session, actor: Principal, user_id: int, *, new: str, revoke_tokens: bool = False
) -> dict[str, int]:
    """An admin (or the operator at the console) sets someone's password, e.g. after a suspected
    leak: every web session of that user ends; ``revoke_tokens`` also revokes their API tokens."""
    authorize(actor, Permission.user_manage, target=f"user:{user_id}")
    user = get_user(session, user_id)
    return _set_password(session, actor, user, new, "user.password_reset", None, revoke_tokens)


def _set_password(
    session: Session,
    actor: Principal,
    user: User,
    new: str,
    action: str,
    keep_sid: str | None,
    revoke_tokens: bool,
) -> dict[str, int]:
    """Store the new hash, end the user's web sessions (but ``keep_sid``), optionally revoke their
    API tokens, and audit it; returns how many sessions ended and tokens were revoked."""
    if len(new) < sec.MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"密码至少{sec.MIN_PASSWORD_LENGTH}位",
            f"Password must be at least {sec.MIN_PASSWORD_LENGTH} characters",
            field="new",
        )
    user.password_hash = sec.hash_password(new)
    ended = {"sessions_ended": end_sessions(session, user.id, keep_sid=keep_sid)}
    if revoke_tokens:
        ended["tokens_revoked"] = revoke_all_tokens(session, user.id)
    details: dict[str, Any] = dict(ended)
    audit.record(session, actor, action, f"user:{user.id}", **details)
    return ended


def find_user(session: Session, username: str) -> User:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"用户“{username}”不存在", f"User '{username}' not found", field="username")
    return user


# -- login and sessions -----------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    session_id: str
    csrf_token: str
    expires_at: datetime


def open_session(session: Session, user: User, *, hours: int) -> NewSession:
    sid = sec.new_session_id()
    csrf = sec.new_session_id()
    expires = _now() + timedelta(hours=hours)
    session.add(WebSession(id_hash=sec.digest(sid), user_id=user.id, csrf_token=csrf, expires_at=expires))
    return NewSession(sid, csrf, expires)


def resolve_session(session: Session, sid: str) -> tuple[User, WebSession] | None:
    ws = session.get(WebSession, sec.digest(sid))
    if ws is None or _aware(ws.expires_at) < _now():
        return None
    user = session.get(User, ws.user_id)
    if user is None or not user.is_active:
        return None
    return user, ws


def close_session(session: Session, actor: Principal, sid: str) -> None:
    ws = session.get(WebSession, sec.digest(sid))
    if ws is not None:
        session.delete(ws)
    audit.record(session, actor, "logout", f"user:{actor.user_id}")


# -- API tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    id: int
    token: str  # shown once, never stored
    expires_at: datetime | None


def create_token(
    session: Session, actor: Principal, *, user_id: int, name: str, days: int | None
) -> IssuedToken:
    if user_id != actor.user_id:
        authorize(actor, Permission.user_manage, target=f"user:{user_id}")
    else:
        authorize(actor, Permission.token_self, target=f"user:{user_id}")
    user = get_user(session, user_id)
    if not user.is_active:
        raise ValidationFailed("该用户已停用", "That user is deactivated")
    name = (name or "token").strip()[:100]
    raw = sec.new_token()
    expires = _now() + timedelta(days=days) if days else None
    tok = ApiToken(
        user_id=user.id, name=name, prefix=raw[:10], token_hash=sec.digest(raw), expires_at=expires
    )
    session.add(tok)
    session.flush()
    audit.record(
        session,
        actor,
        "token.create",
        f"token:{tok.id}",
        user_id=user.id,
        name=name,
        prefix=tok.prefix,
    )
    return IssuedToken(tok.id, raw, expires)


def revoke_token(session: Session, actor: Principal, token_id: int) -> None:
    tok = session.get(ApiToken, token_id)
    if tok is None:
        raise NotFound(f"令牌 {token_id} 不存在", f"Token {token_id} not found")
    if tok.user_id != actor.user_id:
        authorize(actor, Permission.user_manage, target=f"token:{token_id}")
    else:
        authorize(actor, Permission.token_self, target=f"token:{token_id}")
    if tok.revoked_at is None:
        tok.revoked_at = _now()
    audit.record(session, actor, "token.revoke", f"token:{token_id}")


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    return list(
        session.execute(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
        ).scalars()
    )


_BAD_TOKEN = ("API 令牌无效、已过期或已撤销", "The API token is invalid, expired or revoked")


def resolve_token(session: Session, raw: str) -> User:
    return resolve_token_record(session, raw)[0]


def resolve_token_record(session: Session, raw: str) -> tuple[User, ApiToken]:
    """The user of a live token and the token's row (for ``last_used_at``)."""
    tok = session.execute(select(ApiToken).where(ApiToken.token_hash == sec.digest(raw))).scalar_one_or_none()
    if tok is None or tok.revoked_at is not None:
        raise NotAuthenticated(*_BAD_TOKEN)
    if tok.expires_at is not None and _aware(tok.expires_at) < _now():
        raise NotAuthenticated(*_BAD_TOKEN)
    user = session.get(User, tok.user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated(*_BAD_TOKEN)
    return user, tok


#: ``last_used_at`` is written at most this often per token: a feed sending many requests a
#: second must not turn every one into a write (SQLite serialises writers)
TOUCH_EVERY_S = 60


def token_needs_touch(last_used_at: datetime | None, *, now: datetime | None = None) -> bool:
    return last_used_at is None or _aware(last_used_at) < (now or _now()) - timedelta(seconds=TOUCH_EVERY_S)


def touch_token(session: Session, raw: str) -> bool:
    """Record that the token ``raw`` was used now (``last_used_at``), unless it already was in the
    last ``TOUCH_EVERY_S`` seconds; True when the row was written.  A conditional UPDATE, so two
    processes touching at once write once and never move the time backwards."""
    now = _now()
    result = session.execute(
        update(ApiToken)
        .where(
            ApiToken.token_hash == sec.digest(raw),
            or_(
                ApiToken.last_used_at.is_(None),
                ApiToken.last_used_at < now - timedelta(seconds=TOUCH_EVERY_S),
            ),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def is_unique_violation(exc: IntegrityError) -> bool:
    return "unique" in str(exc.orig).lower()
