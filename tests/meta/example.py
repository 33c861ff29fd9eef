"""The shape of one meta-test example (kept apart so area example files can import it freely)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Example:
    who: str  # which world user acts
    body: dict[str, Any] | None = None  # JSON for /api, form data for pages
    files: bool = False  # send a CSV file (multipart) matching the world's dataset d1
    open_to_all: bool = False  # any logged-in user may do it (own tokens, logout, password)
    anonymous: bool = False  # the login form itself
    params: dict[str, str] = field(default_factory=dict)
