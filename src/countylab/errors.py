"""One error hierarchy for the whole lab.

Domain code raises these; it never knows about HTTP. ``countylab.web.errors`` maps them to
status codes, and both the web layer and the CLI render ``message(lang)`` so the user reads
the reason in Chinese or English.  ``details`` carries machine-readable context such as the
row, column and reason of a bad upload.
"""

from __future__ import annotations

from typing import Any


class CountylabError(Exception):
    """Base of every error the lab raises on purpose."""

    code = "error"

    def __init__(self, message_zh: str, message_en: str | None = None, **details: Any) -> None:
        super().__init__(message_en or message_zh)
        self.message_zh = message_zh
        self.message_en = message_en or message_zh
        self.details: dict[str, Any] = details

    def message(self, lang: str = "zh-CN") -> str:
        return self.message_en if lang.startswith("en") else self.message_zh


class UserError(CountylabError):
    """The request is wrong: bad input, invalid state transition, unsupported query."""

    code = "user_error"


class ValidationFailed(UserError):
    """Input failed validation; ``details`` names row/column/reason where known."""

    code = "validation_failed"


class NotAuthenticated(CountylabError):
    code = "not_authenticated"


class PermissionDenied(CountylabError):
    code = "permission_denied"


class NotFound(CountylabError):
    code = "not_found"


class Conflict(CountylabError):
    """The request clashes with current state (duplicate name, repeated vote, race)."""

    code = "conflict"


class QuotaExceeded(CountylabError):
    """A budget or quota would be overspent (privacy budget, compute quota, rate limit)."""

    code = "quota_exceeded"


class TooLarge(UserError):
    code = "too_large"


class BugError(CountylabError):
    """An internal invariant broke; shown to users as a generic failure."""

    code = "internal"
