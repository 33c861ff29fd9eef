"""Message catalogs (zh-CN default, en) for the UI and CLI.

Catalogs are JSON files beside this module, keyed by dotted names: ``<lang>.json`` holds the
common words, and ``<lang>/<area>.json`` the words of one area (search, notifications, …), so a
capability brings its own words without touching everyone else's file.  A key defined in two
files is an error.  A test checks that both catalogs have exactly the same keys and that every key
used in a template exists, so no string is left untranslated or scattered in templates.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"
_DIR = Path(__file__).parent


def catalog_files(lang: str) -> list[Path]:
    """The files that make up one language's catalog: the common file, then each area's file."""
    return [_DIR / f"{lang}.json", *sorted((_DIR / lang).glob("*.json"))]


@cache
def catalog(lang: str) -> dict[str, str]:
    data: dict[str, str] = {}
    for path in catalog_files(lang):
        part: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        twice = sorted(set(part) & set(data))
        if twice:
            raise ValueError(f"{path.name}: keys already defined in another catalog file: {twice[:5]}")
        data.update(part)
    return data


def normalise(lang: str | None) -> str:
    if not lang:
        return DEFAULT_LANG
    low = lang.lower()
    if low.startswith("en"):
        return "en"
    if low.startswith("zh"):
        return "zh-CN"
    return DEFAULT_LANG


def from_accept_language(header: str | None) -> str | None:
    """First supported language in an Accept-Language header, honouring q-values."""
    if not header:
        return None
    ranked: list[tuple[float, str]] = []
    for part in header.split(","):
        bits = part.strip().split(";q=")
        try:
            q = float(bits[1]) if len(bits) > 1 else 1.0
        except ValueError:
            q = 0.0
        tag = bits[0].strip().lower()
        if tag.startswith(("zh", "en")):
            ranked.append((q, tag))
    if not ranked:
        return None
    ranked.sort(key=lambda x: -x[0])
    return normalise(ranked[0][1])


def translator(lang: str) -> Callable[..., str]:
    cat = catalog(normalise(lang))
    fallback = catalog(DEFAULT_LANG)

    def t(key: str, **kwargs: Any) -> str:
        text = cat.get(key) or fallback.get(key) or key
        return text.format(**kwargs) if kwargs else text

    return t
