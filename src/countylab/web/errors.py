"""The one place where lab errors become HTTP responses (JSON for /api, pages for the UI).

It also writes them down: :func:`document_errors` adds the error envelope and every status a lab
error maps to (:data:`STATUS`) to each API operation of the OpenAPI document, so a client (and the
schema-driven tests of ``tests/schema/``) knows every answer an operation can give.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError
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


#: JSON endpoints: the API, and the public pages' JSON (no login) under /public/api/
API_PREFIXES = ("/api/", "/public/api/")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


#: the JSON body of every error answer of the API (``error_body``), as a JSON Schema
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "LabError",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "machine-readable reason, e.g. not_found"},
                "message": {"type": "string", "description": "in the caller's language (zh-CN or en)"},
                "details": {"type": "object", "additionalProperties": True},
            },
        }
    },
}

_DESCRIPTIONS = {
    400: "请求有误 / bad request",
    401: "未登录或令牌无效 / not authenticated",
    403: "无权限（已记入审计日志）/ permission denied (audited)",
    404: "不存在或不可见 / not found",
    409: "与当前状态冲突 / conflict with the current state",
    413: "请求体过大 / request body too large",
    422: "参数有误 / validation failed (details.problems names each field)",
    429: "请求过多或超出配额，见 Retry-After / too many requests or quota exceeded (see Retry-After)",
}


def error_statuses() -> list[int]:
    """Every status a lab error can be answered with, except 500 (a bug, never documented)."""
    return sorted({status for _cls, status in STATUS if status < 500} | {401, 404, 413, 422})


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers to every ``/api`` operation of an OpenAPI document (in place).

    Any API call can meet an expired token (401), a missing permission (403), a missing or
    invisible object (404), a conflict (409), a rate or quota limit (429), malformed input
    (422) or a refusal the lab explains (400); an operation with a body can also meet the body
    limit (413).  FastAPI's own 422 schema (``{"detail": [...]}``) is replaced by the envelope
    the lab really sends (``{"error": {...}}``).
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["LabError"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/LabError"}
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(API_PREFIXES):
            continue
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in error_statuses():
                if status == 413 and "requestBody" not in operation and method.lower() in ("get", "delete"):
                    continue
                entry: dict[str, Any] = {
                    "description": _DESCRIPTIONS.get(status, "error"),
                    "content": {"application/json": {"schema": ref}},
                }
                if status == 429:
                    entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
                responses[str(status)] = entry
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in components and unused not in str(schema.get("paths", {})):
            del components[unused]
    return schema


def install(app: FastAPI) -> None:
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(plain_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

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

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def _unstorable(request: Request, exc: Exception) -> Response:
        """A value the database (or the standard library) cannot hold: an integer past a column's
        range that no parameter bound caught, or a NUL character in PostgreSQL text.  The input
        is wrong, not the lab: 422, like any other malformed input (the transaction rolled back)."""
        log.warning("refused an unstorable value on %s %s: %s", request.method, request.url.path, type(exc))
        refused = ValidationFailed(
            "输入中有无法存储的值（数值超出范围或含 NUL 字符）",
            "the input holds a value that cannot be stored (a number out of range or a NUL character)",
            reason="out_of_range",
        )
        return await _lab_error(request, refused)

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
