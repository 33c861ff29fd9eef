"""The notes of a DP answer (how it was made), in the reader's language.

The engine writes each note from a template of the English catalog (``dp.note.*``), and the API
keeps those English texts in ``notes`` (stable for scripts, stored with cached answers).  For
people, :func:`localise` reads a note back against the same templates and writes it in the
page's language, so the Chinese console says 纯 ε-差分隐私 and never mixes in an English
sentence.  A note that matches no template (an answer cached by an older version) is shown as
it is.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from countylab.i18n import catalog, normalise

KEYS = ("pure", "clamped", "fixed_point", "partition")
_FIELD = re.compile(r"\\\{(\w+)\\\}")


def note(key: str, **params: Any) -> str:
    """The English note ``key`` with its figures (what the API's ``notes`` hold)."""
    return catalog("en")[f"dp.note.{key}"].format(**params)


@cache
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    out = []
    for key in KEYS:
        template = re.escape(catalog("en")[f"dp.note.{key}"])
        out.append((key, re.compile(_FIELD.sub(lambda m: f"(?P<{m.group(1)}>.+?)", template))))
    return tuple(out)


def localise(text: str, lang: str) -> str:
    """``text`` (an English note) in ``lang``; unknown notes unchanged."""
    lang = normalise(lang)
    if lang == "en":
        return text
    for key, pattern in _patterns():
        m = pattern.fullmatch(text)
        if m:
            return catalog(lang)[f"dp.note.{key}"].format(**m.groupdict())
    return text
