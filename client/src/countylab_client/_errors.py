"""The SDK's exception hierarchy and the one place that maps an HTTP response to it.

Callers catch by meaning (``NotFoundError``, ``QuotaExceededError``) rather than by status code,
so the mapping lives here and nowhere else.  Every exception carries the server's stable
machine ``code``, its human ``message`` (already in the language asked for with
``Accept-Language``) and ``details`` such as the row and column of a rejected upload.
"""

from __future__ import annotations

from typing import Any

import httpx


class CountylabClientError(Exception):
    """Base of every error the SDK raises on purpose.

    ``status_code`` is ``None`` when no HTTP response was received (see ``TransportError``).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str = "error",
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        prefix = f"[{self.status_code} {self.code}]" if self.status_code is not None else f"[{self.code}]"
        return f"{prefix} {self.message}"


class AuthenticationError(CountylabClientError):
    """401: the token is missing, wrong, expired or revoked."""


class PermissionDeniedError(CountylabClientError):
    """403: authenticated, but the role or grant does not allow this."""


class NotFoundError(CountylabClientError):
    """404: no such project, dataset or version (or it is hidden from this caller)."""


class ConflictError(CountylabClientError):
    """409: the request clashes with current state."""


class QuotaExceededError(CountylabClientError):
    """429 or code ``quota_exceeded``: privacy budget, compute quota or rate limit would be overspent."""


class ValidationError(CountylabClientError):
    """400/422: the request was malformed or its content failed validation."""


class ServerError(CountylabClientError):
    """5xx: the server failed; retrying later may help."""


class TransportError(CountylabClientError):
    """No usable HTTP response: connection refused, DNS failure, timeout, dropped connection."""

    def __init__(self, message: str, *, url: str, code: str = "transport_error") -> None:
        super().__init__(message, status_code=None, code=code, details={"url": url})
        self.url = url


_BY_STATUS: dict[int, type[CountylabClientError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: QuotaExceededError,
}

# Used only when the status alone does not decide (e.g. a proxy rewrote it, or 413/other 4xx).
_BY_CODE: dict[str, type[CountylabClientError]] = {
    "not_authenticated": AuthenticationError,
    "permission_denied": PermissionDeniedError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "quota_exceeded": QuotaExceededError,
    "validation_failed": ValidationError,
    "internal": ServerError,
}


def _choose_class(status_code: int, code: str) -> type[CountylabClientError]:
    # A quota problem is named by its code even when sent with another status, so callers can
    # rely on catching QuotaExceededError for every "budget spent" answer.
    if code == "quota_exceeded":
        return QuotaExceededError
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if status_code >= 500:
        return ServerError
    return _BY_CODE.get(code, CountylabClientError)


def error_from_response(response: httpx.Response) -> CountylabClientError:
    """Build the exception for a non-2xx response, tolerating bodies that are not our JSON.

    A reverse proxy may answer with HTML (502 page) or nothing at all; the caller still gets the
    right class from the status code and a readable, truncated message.
    """
    status = response.status_code
    code = "internal" if status >= 500 else f"http_{status}"
    message = response.reason_phrase or f"HTTP {status}"
    details: dict[str, Any] = {}
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        if isinstance(error.get("code"), str):
            code = error["code"]
        if isinstance(error.get("message"), str):
            message = error["message"]
        if isinstance(error.get("details"), dict):
            details = error["details"]
    elif response.content:
        text = response.text.strip()
        if text:
            message = f"{message}: {text[:200]}"
    return _choose_class(status, code)(message, status_code=status, code=code, details=details)
