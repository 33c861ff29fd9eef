"""Identifiers (``[a-z][a-z0-9_]*``) from Chinese names: 常住人口信息 → ``changzhurenkouxinxi``.

Why: SQL, the SDK and job code need ASCII identifiers, but a clerk names a dataset 常住人口信息
and a column 出生日期.  Asking them to invent ``resident_info`` was where registration stopped.
Pinyin (pypinyin, offline dictionary) is what Chinese developers already read in identifiers;
each word of Chinese text becomes its syllables run together, other runs of letters and digits
are kept, and parts are joined by ``_``.  Names over ``max_len`` fall back to the initials
(``czrkxx``).  The result is always shown and editable before anything is saved.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def _parts(text: str) -> list[tuple[str, str]]:
    """(full, initials) per chunk of ``text``: CJK runs as pinyin, ASCII words as themselves."""
    from pypinyin import Style, lazy_pinyin

    out: list[tuple[str, str]] = []
    pos = 0
    text = unicodedata.normalize("NFKC", text)
    for m in _CJK.finditer(text):
        out.extend((w, w[:1]) for w in re.findall(r"[a-z0-9]+", text[pos : m.start()].lower()))
        syllables = [s for s in lazy_pinyin(m.group(), style=Style.NORMAL, errors="ignore") if s.isascii()]
        if syllables:
            out.append(("".join(syllables), "".join(s[0] for s in syllables)))
        pos = m.end()
    out.extend((w, w[:1]) for w in re.findall(r"[a-z0-9]+", text[pos:].lower()))
    return out


def identifier_from(text: str, *, taken: Iterable[str] = (), fallback: str = "col", max_len: int = 40) -> str:
    """An identifier for ``text`` not in ``taken`` (compared case-insensitively): ``_2``, ``_3``…"""
    parts = _parts(text)
    ident = "_".join(full for full, _ in parts)
    if len(ident) > max_len:
        ident = "_".join(initials if len(full) > 3 else full for full, initials in parts)[:max_len]
    ident = re.sub(r"_+", "_", ident).strip("_")
    if not ident or not ident[0].isalpha():
        ident = f"{fallback}_{ident}" if ident else fallback
    used = {t.casefold() for t in taken}
    candidate, n = ident, 1
    while candidate in used:
        n += 1
        candidate = f"{ident}_{n}"
    return candidate


def identifiers_for(texts: Iterable[str], *, taken: Iterable[str] = (), fallback: str = "col") -> list[str]:
    """Distinct identifiers for several texts (column headers); ASCII identifiers stay as they are."""
    used = {t.casefold() for t in taken}
    out: list[str] = []
    for i, text in enumerate(texts):
        plain = text.strip()
        if IDENTIFIER.match(plain) and plain not in used:
            ident = plain
        else:
            ident = identifier_from(
                plain, taken=used, fallback=f"{fallback}{i + 1}" if not plain else fallback
            )
        used.add(ident.casefold())
        out.append(ident)
    return out
