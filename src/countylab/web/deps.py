"""Request dependencies: who is acting (token or session), CSRF, language."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.errors import NotAuthenticated, PermissionDenied
from countylab.identity import service as ids
from countylab.identity.access import Principal
from countylab.identity.cache import CachedSession
from countylab.identity.login import LoggedIn, LoginPolicy, login
from countylab.identity.secrets import digest, same
from countylab.lab import Lab
from countylab.storage.models import User, WebSession

SESSION_COOKIE = "countylab_session"
LANG_COOKIE = "lang"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_lab(request: Request) -> Lab:
    lab: Lab = request.app.state.lab
    return lab


def _resolve(request: Request) -> Principal | None:
    lab = get_lab(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        raw = header[7:].strip()
        key = digest(raw)
        cached = lab.principals.get(key)
        if cached is None:
            with lab.read() as s:
                user, tok = ids.resolve_token_record(s, raw)
                cached = ids.principal_for(s, user, "token")
                stale = ids.token_needs_touch(tok.last_used_at)
            if stale:  # at most once a minute per token: a write of its own, outside the read
                with lab.tx() as s:
                    ids.touch_token(s, raw)
            lab.principals.put(key, cached)
        request.state.principal = cached
        return cached
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        return None
    key = digest(sid)
    entry = lab.principals.get_session(key)
    with lab.read() as s:
        if entry is not None and not _session_alive(s, key):
            return None  # logged out, ended by a password change or deactivation (any process)
        if entry is None:
            found = ids.resolve_session(s, sid)
            if found is None:
                return None
            user, ws = found
            entry = CachedSession(ids.principal_for(s, user, "session"), ws.csrf_token, user.display_name)
            lab.principals.put_session(key, entry)
    request.state.csrf = entry.csrf
    request.state.user_display = entry.display_name
    request.state.principal = entry.principal
    return entry.principal


def _session_alive(s: Session, key: str) -> bool:
    """One indexed query instead of the session, the user with roles and org, and memberships:
    a cached session is still checked on every request, so ending it (logout, deactivation,
    password change, also from the CLI) takes effect at once; roles and memberships are those
    of at most ``PrincipalCache.ttl_s`` ago, as for tokens."""
    row = s.execute(
        select(WebSession.expires_at)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.id_hash == key, User.is_active.is_(True))
    ).first()
    if row is None:
        return False
    expires = row[0] if row[0].tzinfo else row[0].replace(tzinfo=UTC)
    return bool(expires >= datetime.now(UTC))


def login_with_password(lab: Lab, request: Request, username: str, password: str) -> LoggedIn:
    """The web form's and the API's login: throttled per account and per client address, with
    the counters in the database so that every server process sees the same ones.

    The address is the TCP peer; behind a reverse proxy that is the proxy's, so the per-address
    limit then counts everyone together (forwarded headers are not trusted: a client sets them)."""
    address = request.client.host if request.client else "?"
    return login(
        lab.tx,
        lab.read,
        LoginPolicy.of(lab.settings),
        username=username,
        password=password,
        address=address,
        session_hours=lab.settings.session_hours,
    )


def set_session_cookie(response: Response, lab: Lab, session_id: str) -> None:
    """The web session cookie, set the same way by the login form and ``POST /api/login``:
    HttpOnly (no script reads it), SameSite=Lax, Secure when the lab says so."""
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="lax",
        secure=lab.settings.cookie_secure,
        max_age=lab.settings.session_hours * 3600,
    )


def optional_principal(request: Request) -> Principal | None:
    return _resolve(request)


async def acting(request: Request) -> Principal:
    """The authenticated principal; cookie-authenticated unsafe requests must carry the CSRF token."""
    from starlette.concurrency import run_in_threadpool

    principal = await run_in_threadpool(_resolve, request)
    if principal is None:
        raise NotAuthenticated("请先登录", "Please log in first")
    if request.method in UNSAFE and principal.via == "session":
        expected = getattr(request.state, "csrf", "")
        sent = request.headers.get("x-csrf-token", "")
        if not sent and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else ""
        if not expected or not sent or not same(expected, sent):
            raise PermissionDenied(
                "请求缺少有效的 CSRF 令牌，请刷新页面后重试",
                "Missing or invalid CSRF token; reload the page and try again",
                permission="csrf",
                target=request.url.path,
                reason="csrf",
            )
    return principal


Actor = Annotated[Principal, Depends(acting)]
MaybeActor = Annotated[Principal | None, Depends(optional_principal)]
LabDep = Annotated[Lab, Depends(get_lab)]
