"""Helpers shared by the page routes: templates, flash messages, navigation, form actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from countylab.errors import CountylabError, PermissionDenied
from countylab.i18n import translator
from countylab.identity.access import Principal
from countylab.identity.roles import Role

FLASH_COOKIE = "flash"


@dataclass(frozen=True)
class NavItem:
    key: str  # i18n key nav.<key>
    href: str
    roles: frozenset[Role] | None  # None: everyone logged in
    ready: bool = True


NAV: list[NavItem] = [
    NavItem("home", "/", None),
    NavItem("catalog", "/datasets", None),
    NavItem("blackbox", "/query", frozenset({Role.developer, Role.steward, Role.admin})),
    NavItem("compute", "/jobs", frozenset({Role.developer, Role.admin, Role.operator})),
    NavItem("pipelines", "/soon/pipelines", frozenset({Role.provider, Role.developer, Role.admin}), False),
    NavItem("airlock", "/airlock", frozenset({Role.checker, Role.developer, Role.steward, Role.admin})),
    NavItem("scenarios", "/scenarios", None),
    NavItem("applications", "/applications", None),
    NavItem("ops", "/ops", frozenset({Role.operator, Role.admin, Role.steward, Role.leader})),
    NavItem("showcase", "/showcase", None),
    NavItem("reports", "/soon/reports", frozenset({Role.provider, Role.admin, Role.operator})),
    NavItem("projects", "/projects", None),
    NavItem("orgs", "/orgs", frozenset({Role.admin, Role.steward, Role.operator})),
    NavItem("audit", "/audit", frozenset({Role.admin, Role.steward})),
]


def nav_for(principal: Principal | None) -> list[NavItem]:
    if principal is None:
        return []
    return [n for n in NAV if n.roles is None or principal.roles & n.roles]


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    templates = request.app.state.templates
    response: Response = templates.TemplateResponse(request, template, context, status_code=status_code)
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE)
    return response


def flash_redirect(url: str, message: str, kind: str = "ok") -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(FLASH_COOKIE, quote(f"{kind}|{message}"), max_age=60, httponly=True, samesite="lax")
    if kind == "error":  # lets the strict-audit guard tell a refused form from a silent change
        response.headers["X-Countylab-Outcome"] = "refused"
    return response


def read_flash(request: Request) -> tuple[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    kind, _, message = unquote(raw).partition("|")
    return (kind if kind in ("ok", "error") else "ok", message[:500])


def lang_of(request: Request) -> str:
    return str(getattr(request.state, "lang", "zh-CN"))


def form_action(
    request: Request, back: str, action: Callable[[], Any], ok_key: str, **ok_args: Any
) -> RedirectResponse:
    """Run a state-changing service call from a form; flash the outcome and go back (PRG)."""
    t = translator(lang_of(request))
    try:
        action()
    except CountylabError as exc:
        if isinstance(exc, PermissionDenied):
            principal = getattr(request.state, "principal", None)
            if principal is not None:
                request.app.state.lab.record_denial(
                    principal, exc, method=request.method, path=request.url.path
                )
        return flash_redirect(back, exc.message(lang_of(request)), "error")
    return flash_redirect(back, t(ok_key, **ok_args))
