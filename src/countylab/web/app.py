"""The FastAPI application factory: one app per Lab, assets served locally (no CDN)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from countylab import __version__
from countylab.audit.log import start_request_tracking
from countylab.i18n import from_accept_language, normalise
from countylab.lab import Lab
from countylab.web import errors
from countylab.web.api import agreements as api_agreements
from countylab.web.api import airlock as api_airlock
from countylab.web.api import applications as api_applications
from countylab.web.api import approvals as api_approvals
from countylab.web.api import audit_export as api_audit_export
from countylab.web.api import catalog as api_catalog
from countylab.web.api import connectors as api_connectors
from countylab.web.api import dashboards as api_dashboards
from countylab.web.api import downloads as api_downloads
from countylab.web.api import identity as api_identity
from countylab.web.api import jobs as api_jobs
from countylab.web.api import maps as api_maps
from countylab.web.api import notifications as api_notifications
from countylab.web.api import query as api_query
from countylab.web.api import scenarios as api_scenarios
from countylab.web.api import search as api_search
from countylab.web.api import usage as api_usage
from countylab.web.bodylimit import MIB, BodyLimit
from countylab.web.deps import LANG_COOKIE, UNSAFE
from countylab.web.ui import (
    agreement_pages,
    airlock_pages,
    application_pages,
    approval_pages,
    audit_view,
    brief_pages,
    catalog_pages,
    connector_pages,
    dashboard_pages,
    filters,
    job_pages,
    map_pages,
    notify_pages,
    pages,
    public_pages,
    query_pages,
    scenario_pages,
    search_pages,
    story_pages,
    upload_pages,
    usage_pages,
)

_HERE = Path(__file__).parent


#: every router of the app, API first; each area owns its own modules
ROUTERS = (
    api_identity.router,
    api_audit_export.router,
    api_catalog.router,
    api_downloads.router,
    api_connectors.router,
    api_query.router,
    api_jobs.router,
    api_airlock.router,
    api_notifications.router,
    api_usage.router,
    api_maps.router,
    api_search.router,
    api_scenarios.router,
    api_applications.router,
    api_dashboards.router,
    api_agreements.router,
    api_approvals.router,
    pages.router,
    audit_view.router,
    catalog_pages.router,
    upload_pages.router,
    connector_pages.router,
    query_pages.router,
    job_pages.router,
    airlock_pages.router,
    search_pages.router,
    notify_pages.router,
    usage_pages.router,
    scenario_pages.router,
    application_pages.router,
    dashboard_pages.router,
    map_pages.router,
    public_pages.router,
    story_pages.router,
    agreement_pages.router,
    approval_pages.router,
    brief_pages.router,
)


_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'",
    ),
]


# Frequent writes that change no role, membership, token or session (pushes, DP queries): they
# keep the principal cache, which would otherwise be dropped a few times a second under load.
_KEEPS_PRINCIPALS = re.compile(r"(/rows|^/api/query|^/query)$")


class RequestContext:
    """Sets the language, tracks audit events, adds security headers, enforces strict audit.

    A plain ASGI middleware (no response buffering): it only looks at the response's start
    message, which is where the strict-audit guard decides and the headers are added.
    """

    def __init__(self, app: ASGIApp, lab: Lab) -> None:
        self.app, self.lab = app, lab

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        cookie = _cookie(headers.get(b"cookie", b"").decode("latin-1"), LANG_COOKIE)
        accept = headers.get(b"accept-language", b"").decode("latin-1")
        state = scope.setdefault("state", {})
        state["lang"] = (
            normalise(cookie) if cookie else (from_accept_language(accept) or self.lab.settings.default_lang)
        )
        events = start_request_tracking()
        state["audit_events"] = events
        method = scope["method"]
        swallow = False

        async def guarded_send(message: Message) -> None:
            nonlocal swallow
            if message["type"] == "http.response.start":
                status = message["status"]
                raw = list(message.get("headers", []))
                outcome = next((v for k, v in raw if k.lower() == b"x-countylab-outcome"), b"")
                if (
                    self.lab.settings.strict_audit
                    and method in UNSAFE
                    and status < 400
                    and not events
                    and outcome not in (b"refused", b"unchanged")
                ):
                    swallow = True
                    body = JSONResponse(
                        errors.error_body(
                            "internal",
                            f"strict audit: {method} {scope['path']} changed state without an audit event",
                        ),
                        500,
                    )
                    await body(scope, receive, send)
                    return
                if method in UNSAFE and status < 400 and not _KEEPS_PRINCIPALS.search(scope["path"]):
                    self.lab.principals.clear()  # roles, memberships or tokens may have changed
                present = {k.lower() for k, _ in raw}
                raw += [(k, v) for k, v in _SECURITY_HEADERS if k not in present]
                message = {**message, "headers": raw}
            elif swallow:
                return
            await send(message)

        await self.app(scope, receive, guarded_send)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def create_app(
    lab: Lab, *, demo_logins: list[dict[str, str]] | None = None, background: bool = False
) -> FastAPI:
    """The web app of ``lab``; ``background`` runs the lab's workers for the app's lifetime."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if background:
            lab.start_background()
        try:
            yield
        finally:
            if background:
                lab.stop_background()

    app = FastAPI(
        lifespan=lifespan,
        title="countylab API",
        version=__version__,
        description="数字县域场景应用实验室 — API. 数据不出域、可用不可见.",
        docs_url=None,  # Swagger UI loads from a CDN; intranets are offline. See docs/reference/api.md.
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.lab = lab
    app.state.demo_logins = demo_logins or []
    templates = Jinja2Templates(
        directory=str(_HERE / "templates"), context_processors=[pages.context_processor]
    )
    app.state.templates = templates
    app.state.people = filters.install(templates, lab)  # |bjtime |label |person |action_label |details
    agreement_pages.install(templates, lab)  # agreement_context() for _agreement.html
    approval_pages.install(templates, lab)  # workflow_context() for _workflow.html
    app.add_middleware(RequestContext, lab=lab)
    settings = lab.settings  # outermost: bodies are limited before anything reads them
    app.add_middleware(
        BodyLimit,
        default_bytes=int(settings.body_max_mb * MIB),
        upload_bytes=int(settings.upload_max_mb * MIB),
        code_bytes=int(settings.body_code_max_mb * MIB),
    )
    errors.install(app)
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


def iter_api_routes(app: FastAPI) -> list[APIRoute]:
    """Every APIRoute of the app, through included routers (used by docs and the meta-test).

    Our routers carry their own prefixes, so each route's ``path`` is already complete.
    """
    found: list[APIRoute] = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(list(inner.routes))

    walk(list(app.routes))
    return found
