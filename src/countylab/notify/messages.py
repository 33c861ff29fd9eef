"""The words of a notification and of a to-do item, in the reader's language.

A notification stores its kind and facts, not sentences: the same row reads in Chinese for a
clerk and in English for a visiting engineer, and a corrected translation corrects old rows.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from countylab.i18n import catalog, normalise

BEIJING = ZoneInfo("Asia/Shanghai")


class _Facts(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "—"


def describe(kind: str, facts: dict[str, Any], lang: str) -> str:
    """One line for ``kind`` with ``facts`` filled in; a fact the text names but the row lacks
    reads "—" (old rows, a renamed fact) rather than failing the whole page.  A fact may be a
    ``{"zh-CN": …, "en": …}`` pair (a grade's name), read in ``lang``."""
    return words(f"notify.kind.{kind}", facts, lang, default=kind)


def words(key: str, facts: dict[str, Any], lang: str, *, default: str | None = None) -> str:
    """The catalog text of ``key`` with ``facts`` filled in (see :func:`describe`)."""
    cat = catalog(normalise(lang))
    text = cat.get(key) or catalog("zh-CN").get(key) or (default if default is not None else key)
    code = normalise(lang)
    filled = _Facts(
        {k: (v.get(code) or v.get("zh-CN") or "—") if isinstance(v, dict) else v for k, v in facts.items()}
    )
    try:
        return string.Formatter().vformat(text, (), filled)
    except (ValueError, IndexError):
        return text


def aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def age(ts: datetime, lang: str, now: datetime | None = None) -> str:
    """How long something has waited, as a person says it ("3 小时", "2 days")."""
    delta = (now or datetime.now(UTC)) - aware(ts)
    zh = normalise(lang) == "zh-CN"
    if delta < timedelta(minutes=1):
        return "刚刚" if zh else "just now"
    if delta < timedelta(hours=1):
        m = int(delta.total_seconds() // 60)
        return f"{m} 分钟前" if zh else f"{m} min ago"
    if delta < timedelta(days=1):
        h = int(delta.total_seconds() // 3600)
        return f"{h} 小时前" if zh else f"{h} h ago"
    d = delta.days
    return f"{d} 天前" if zh else (f"{d} day ago" if d == 1 else f"{d} days ago")


def beijing(ts: datetime) -> str:
    """A stored UTC time as the county reads it (Asia/Shanghai)."""
    return aware(ts).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
