"""Asking a signer's password again (电子签署确认), under the same throttle as logging in.

A signature binds an organisation, so a stolen session cookie alone must not be enough: the
signer types the password again.  A wrong password counts as a failed login (the account and the
client address may lock, ``login.failed`` is audited), so signing cannot be used to guess a
password faster than the login page allows.
"""

from __future__ import annotations

from math import ceil

from sqlalchemy import delete, select

from countylab import audit
from countylab.errors import NotAuthenticated
from countylab.identity import secrets as sec
from countylab.identity.access import Principal
from countylab.identity.login import (
    LoginLocked,
    LoginPolicy,
    UnitOfWork,
    _locked_until,
    _now,
    _record_failure,
    account_key,
    address_key,
)
from countylab.operations.agreements import PasswordConfirmed
from countylab.storage.login_models import LoginThrottle
from countylab.storage.models import User


def confirm_password(
    tx: UnitOfWork, read: UnitOfWork, policy: LoginPolicy, actor: Principal, *, password: str, address: str
) -> PasswordConfirmed:
    """Check ``actor``'s own password; raise ``NotAuthenticated`` or ``LoginLocked``."""
    if actor.user_id is None:
        raise NotAuthenticated("签署须由已登录的个人完成", "Signing needs a person who is logged in")
    keys = (account_key(actor.username), address_key(address))
    with read() as s:
        found = s.execute(
            select(User.password_hash, User.is_active).where(User.id == actor.user_id)
        ).one_or_none()
        locked = _locked_until(s, keys, _now())
    ok = found is not None and sec.verify_password(found.password_hash, password) and bool(found.is_active)
    if locked:
        with tx() as s:
            audit.record(
                s,
                actor,
                "agreement.sign.refused",
                f"user:{actor.user_id}",
                outcome="denied",
                reason="locked",
                address=address,
            )
        retry = max(1, ceil(max((u - _now()).total_seconds() for u in locked.values())))
        raise LoginLocked(
            f"密码错误次数过多，已暂时锁定，请在 {ceil(retry / 60)} 分钟后重试",
            f"Too many wrong passwords: temporarily locked, try again in {ceil(retry / 60)} minute(s)",
            retry_after_s=retry,
        )
    if not ok:
        _record_failure(tx, policy, name=actor.username, user_id=actor.user_id, address=address, keys=keys)
        raise NotAuthenticated("密码不正确，未签署", "Wrong password: nothing was signed", field="password")
    with tx() as s:  # a correct password clears the account's failure count, as a login does
        s.execute(
            delete(LoginThrottle)
            .where(LoginThrottle.key == keys[0])
            .execution_options(synchronize_session=False)
        )
    return PasswordConfirmed(actor.user_id)
