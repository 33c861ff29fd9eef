"""Password login with throttling: the one way a password becomes a web session (form and API).

Why this module opens its own transactions instead of taking the caller's ``Session``:

* A failed login must leave its audit event (``login.failed``) and its counters behind, but the
  request that failed rolls back.  So the outcome is written in a transaction of its own that
  commits before the error is raised.
* The Argon2 check takes tens of milliseconds; holding the SQLite write lock (``BEGIN
  IMMEDIATE``) through it would serialise every request of the lab behind each login.  The
  check runs between a read and the write that records its outcome.
* The counters live in the database (``login_throttle``), because a lab serves from several
  processes: guesses spread over the workers meet one count.

Every attempt costs one Argon2 verification, whether the account exists, is locked or is
deactivated, so timing tells an attacker nothing; a locked account or address answers the same
"too many attempts" whatever the password was.  A successful login resets the account's count
but never the address's: one valid account must not let a sprayer start over.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from math import ceil
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from countylab import audit
from countylab.errors import NotAuthenticated, QuotaExceeded
from countylab.identity import secrets as sec
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.identity.service import NewSession, open_session
from countylab.storage.login_models import LoginThrottle
from countylab.storage.models import User

if TYPE_CHECKING:
    from countylab.config import Settings

UnitOfWork = Callable[[], AbstractContextManager[Session]]

BAD_LOGIN = ("用户名或密码错误", "Wrong username or password")


class LoginLocked(QuotaExceeded):
    """Too many failed logins for this account or from this address (HTTP 429, Retry-After)."""

    code = "login_locked"


@dataclass(frozen=True)
class LoginPolicy:
    """Thresholds of the throttle, from ``Settings.login_*``."""

    max_failures: int = 5
    address_max_failures: int = 30
    window_s: int = 900
    lockout_s: int = 900

    @classmethod
    def of(cls, settings: Settings) -> LoginPolicy:
        return cls(
            max_failures=settings.login_max_failures,
            address_max_failures=settings.login_address_max_failures,
            window_s=settings.login_window_s,
            lockout_s=settings.login_lockout_s,
        )


@dataclass(frozen=True)
class LoggedIn:
    user_id: int
    username: str
    lang: str
    session: NewSession


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime) -> datetime:
    """SQLite returns naive datetimes; everything we store is UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def account_key(username: str) -> str:
    # usernames are lower-case; "Admin" and "admin" are guesses at the same account
    return "account:" + username.strip().lower()[:150]


def address_key(address: str) -> str:
    return "address:" + (address or "?")[:150]


def login(
    tx: UnitOfWork,
    read: UnitOfWork,
    policy: LoginPolicy,
    *,
    username: str,
    password: str,
    address: str,
    session_hours: int,
) -> LoggedIn:
    """Check ``username``/``password`` from ``address`` and open a web session.

    Raises ``NotAuthenticated`` for wrong credentials (after recording the failure) and
    ``LoginLocked`` while the account or the address is locked (after recording the refusal).
    """
    name = username.strip()
    keys = (account_key(name), address_key(address))
    with read() as s:
        found = s.execute(
            select(User.id, User.password_hash, User.is_active).where(User.username == name)
        ).one_or_none()
        locked = _locked_until(s, keys, _now())
    if found is None:
        sec.dummy_verify()
        ok = False
    else:
        ok = sec.verify_password(found.password_hash, password) and bool(found.is_active)
    user_id = int(found.id) if found is not None else None

    if ok and not locked:
        assert user_id is not None
        with tx() as s:  # a lock set by another process since the read above still holds
            now = _now()
            locked = _locked_until(s, keys, now, for_update=True)
            if not locked:
                user = s.get(User, user_id)
                assert user is not None
                s.execute(
                    delete(LoginThrottle)
                    .where(LoginThrottle.key == keys[0])
                    .execution_options(synchronize_session=False)
                )
                audit.append(
                    s,
                    actor_id=user.id,
                    actor=user.username,
                    action="login",
                    target=f"user:{user.id}",
                    details={"address": address},
                )
                new = open_session(s, user, hours=session_hours)
                return LoggedIn(user.id, user.username, user.lang, new)
    if locked:
        with tx() as s:
            audit.append(
                s,
                actor_id=user_id,
                actor=name[:100] or "?",
                action="login.refused",
                target=f"user:{user_id}" if user_id else "",
                outcome="denied",
                details={"address": address, "reason": "locked", "locked": sorted(locked)},
            )
        retry = max(1, ceil(max((until - _now()).total_seconds() for until in locked.values())))
        raise LoginLocked(
            f"登录失败次数过多，已暂时锁定，请在 {ceil(retry / 60)} 分钟后重试",
            f"Too many failed logins: temporarily locked, try again in {ceil(retry / 60)} minute(s)",
            retry_after_s=retry,
        )
    _record_failure(tx, policy, name=name, user_id=user_id, address=address, keys=keys)
    raise NotAuthenticated(*BAD_LOGIN)


def _locked_until(
    s: Session, keys: tuple[str, str], now: datetime, *, for_update: bool = False
) -> dict[str, datetime]:
    q = select(LoginThrottle).where(LoginThrottle.key.in_(keys)).order_by(LoginThrottle.key)
    rows = s.execute(q.with_for_update() if for_update else q).scalars()
    return {
        r.key.split(":", 1)[0]: _aware(r.locked_until)
        for r in rows
        if r.locked_until is not None and _aware(r.locked_until) > now
    }


def _record_failure(
    tx: UnitOfWork,
    policy: LoginPolicy,
    *,
    name: str,
    user_id: int | None,
    address: str,
    keys: tuple[str, str],
) -> None:
    """Count the failure against the account and the address, lock either at its threshold
    (an ``auth.lockout`` alert), and audit ``login.failed`` — committed before the error."""
    with tx() as s:
        now = _now()
        limits = (policy.max_failures, policy.address_max_failures)
        for key, limit in zip(keys, limits, strict=True):  # always account, then address: no deadlock
            row = _counter(s, key, now)
            if _aware(row.window_start) <= now - timedelta(seconds=policy.window_s):
                row.failures, row.window_start = 0, now
            row.failures += 1
            already = row.locked_until is not None and _aware(row.locked_until) > now
            if row.failures >= limit and not already:
                row.locked_until = now + timedelta(seconds=policy.lockout_s)
                failures, row.failures, row.window_start = row.failures, 0, now
                kind = key.split(":", 1)[0]
                audit.record(
                    s,
                    None,
                    "auth.lockout",
                    (f"user:{user_id}" if user_id else key) if kind == "account" else key,
                    outcome="denied",
                    kind=kind,
                    username=name[:100],
                    address=address,
                    failures=failures,
                    window_s=policy.window_s,
                    until=row.locked_until.isoformat(),
                )
        s.flush()
        _forget_stale(s, now, policy)
        audit.append(
            s,
            actor_id=user_id,
            actor=name[:100] or "?",
            action="login.failed",
            target=f"user:{user_id}" if user_id else "",
            outcome="denied",
            details={"address": address},
        )


def _counter(s: Session, key: str, now: datetime) -> LoginThrottle:
    """The row of ``key``, locked; created when missing (two processes may race to create it)."""
    q = select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
    row = s.execute(q).scalar_one_or_none()
    if row is not None:
        return row
    try:
        with s.begin_nested():
            s.add(LoginThrottle(key=key, failures=0, window_start=now, locked_until=None))
    except IntegrityError:  # created meanwhile by another process: take theirs
        pass
    return s.execute(q).scalar_one()


def _forget_stale(s: Session, now: datetime, policy: LoginPolicy) -> None:
    """Counters whose window and lock have both passed say nothing any more (also bounds the
    table when someone sprays made-up usernames)."""
    s.execute(
        delete(LoginThrottle)
        .where(
            LoginThrottle.window_start < now - timedelta(seconds=policy.window_s),
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
        )
        .execution_options(synchronize_session=False)
    )


def unlock(s: Session, actor: Principal, *, username: str | None = None, address: str | None = None) -> int:
    """Clear the counters (and lock) of an account and/or an address; audited as ``auth.unlock``.

    For the operator at the console (``countylab user unlock``) and admins: a locked-out
    colleague should not have to wait out ``login_lockout_s``."""
    authorize(actor, Permission.user_manage, target=f"account:{username or ''}")
    keys = [account_key(username)] if username else []
    keys += [address_key(address)] if address else []
    if not keys:
        return 0
    result = s.execute(
        delete(LoginThrottle).where(LoginThrottle.key.in_(keys)).execution_options(synchronize_session=False)
    )
    cleared = int(getattr(result, "rowcount", 0) or 0)
    audit.record(s, actor, "auth.unlock", ",".join(keys), cleared=cleared)
    return cleared
