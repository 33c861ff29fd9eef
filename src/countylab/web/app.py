"""The FastAPI application factory: one app per Lab, assets served locally (no CDN)."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from countylab import __version__
from countylab.audit.log import start_request_tracking
from countylab.i18n import from_accept_language, normalise
from countylab.lab import Lab
from countylab.web import errors
from countylab.web.deps import LANG_COOKIE, UNSAFE
from countylab.web.ui import pages

_HERE = Path(__file__).parent


#: every router of the app, by module under countylab.web (each area owns its own modules)
ROUTERS = (
    "api.identity",
    "api.catalog",
    "api.connectors",
    "api.query",
    "api.jobs",
    "api.airlock",
    "ui.pages",
    "ui.catalog_pages",
    "ui.connector_pages",
    "ui.query_pages",
    "ui.job_pages",
    "ui.airlock_pages",
)


class RequestContext(BaseHTTPMiddleware):
    """Sets the language, tracks audit events, adds security headers, enforces strict audit."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        lab: Lab = request.app.state.lab
        cookie = request.cookies.get(LANG_COOKIE)
        request.state.lang = (
            normalise(cookie)
            if cookie
            else (from_accept_language(request.headers.get("accept-language")) or lab.settings.default_lang)
        )
        events = start_request_tracking()
        request.state.audit_events = events
        response = await call_next(request)
        if (
            lab.settings.strict_audit
            and request.method in UNSAFE
            and response.status_code < 400
            and not events
            and response.headers.get("X-Countylab-Outcome") not in ("refused", "unchanged")
        ):
            return JSONResponse(
                errors.error_body(
                    "internal",
                    f"strict audit: {request.method} {request.url.path} changed state without an audit event",
                ),
                500,
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'",
        )
        return response


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
    app.add_middleware(RequestContext)
    errors.install(app)
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
    for module in ROUTERS:
        app.include_router(importlib.import_module(f"countylab.web.{module}").router)

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
