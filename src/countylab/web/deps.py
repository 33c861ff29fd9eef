"""Request dependencies: who is acting (token or session), CSRF, language."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from countylab.errors import NotAuthenticated, PermissionDenied
from countylab.identity import service as ids
from countylab.identity.access import Principal
from countylab.identity.login import LoggedIn, LoginPolicy, login
from countylab.identity.secrets import digest, same
from countylab.lab import Lab

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
    with lab.read() as s:
        found = ids.resolve_session(s, sid)
        if found is None:
            return None
        user, ws = found
        principal = ids.principal_for(s, user, "session")
        request.state.csrf = ws.csrf_token
        request.state.user_display = user.display_name
    request.state.principal = principal
    return principal


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
