"""The one place where lab errors become HTTP responses (JSON for /api, pages for the UI)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from countylab.errors import (
    BugError,
    Conflict,
    CountylabError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    TooLarge,
    UserError,
    ValidationFailed,
)
from countylab.i18n import translator

log = logging.getLogger("countylab.web")

STATUS: list[tuple[type[CountylabError], int]] = [
    (NotAuthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (TooLarge, 413),
    (QuotaExceeded, 429),
    (ValidationFailed, 422),
    (UserError, 400),
    (BugError, 500),
    (CountylabError, 400),
]


def status_for(exc: CountylabError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _lang(request: Request) -> str:
    return str(getattr(request.state, "lang", "zh-CN"))


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install(app: FastAPI) -> None:
    @app.exception_handler(CountylabError)
    async def _lab_error(request: Request, exc: CountylabError) -> Response:
        status = status_for(exc)
        lang = _lang(request)
        if isinstance(exc, PermissionDenied):
            lab = request.app.state.lab
            principal = getattr(request.state, "principal", None)
            if principal is not None:  # a write of its own, off the event loop
                await run_in_threadpool(
                    lab.record_denial, principal, exc, method=request.method, path=request.url.path
                )
        if _is_api(request):
            details = {k: v for k, v in exc.details.items() if k != "target"}
            resp = JSONResponse(error_body(exc.code, exc.message(lang), details), status_code=status)
            if isinstance(details.get("retry_after_s"), int):  # rate and concurrency limits (429)
                resp.headers["Retry-After"] = str(details["retry_after_s"])
            return resp
        if isinstance(exc, NotAuthenticated):
            redirect = RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            redirect.headers["X-Countylab-Outcome"] = "refused"
            return redirect
        return _page(request, status, exc.message(lang))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        t = translator(_lang(request))
        problems = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                position = err.get("loc", ("body", 0))[-1]
                problems.append(
                    {
                        "field": "body",
                        "reason": "json_invalid",
                        "position": position,
                        "message": err.get("msg", ""),
                    }
                )
                continue
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append({"field": loc, "reason": err.get("type", ""), "message": err.get("msg", "")})
        if problems and problems[0]["reason"] == "json_invalid":
            message = t("error.bad_json", position=problems[0]["position"])
        else:
            message = t(
                "error.malformed", fields=", ".join(f"{p['field']} ({p['message']})" for p in problems) or "-"
            )
        if _is_api(request):
            return JSONResponse(error_body("validation_failed", message, {"problems": problems}), 422)
        return _page(request, 422, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        t = translator(_lang(request))
        key = {404: "error.not_found", 405: "error.method", 401: "error.login"}.get(
            exc.status_code, "error.http"
        )
        message = t(key, status=exc.status_code)
        if _is_api(request):
            code = {404: "not_found", 401: "not_authenticated"}.get(exc.status_code, "http_error")
            return JSONResponse(error_body(code, message), exc.status_code)
        return _page(request, exc.status_code, message)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        message = translator(_lang(request))("error.internal")
        if _is_api(request):
            return JSONResponse(error_body("internal", message), 500)
        return _page(request, 500, message)


def _page(request: Request, status: int, message: str) -> Response:
    templates = request.app.state.templates
    response: Response = templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )
    return response
