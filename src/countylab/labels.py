"""Display names of codes (grades, states, kinds, audit actions) and of people, times in Beijing time.

The database, the API and JSON output keep codes (``general_2``, ``running``, ``dataset.push``) and
UTC: they are what programs compare.  People read names: 一般数据2级, 运行中, 推送数据, and
2026-12-05 20:14 in Beijing time.  Every page, CLI table and e-mail goes through this module, so a
code has exactly one name per language, and a test (``tests/i18n/test_labels.py``) checks that every
enum member and every audit action the code emits has one in both languages.

The words themselves live in the message catalogs (``i18n/<lang>.json`` and
``i18n/<lang>/labels.json``), so translators see them with the rest of the UI; this module only
knows which catalog prefix belongs to which kind of code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from countylab.i18n import DEFAULT_LANG, catalog, normalise

#: the one time zone people see; everything is stored and exchanged in UTC
BEIJING = ZoneInfo("Asia/Shanghai")

#: named formats of :func:`bjtime`; ``minute`` is the default everywhere in the UI
TIME_FORMATS: dict[str, str] = {
    "minute": "%Y-%m-%d %H:%M",
    "second": "%Y-%m-%d %H:%M:%S",
    "date": "%Y-%m-%d",
    "time": "%H:%M",
    "month": "%Y-%m",
}


@dataclass(frozen=True)
class Kind:
    """One kind of code: where its names are in the catalogs, and its codes (for the test)."""

    prefix: str  # catalog key = prefix + code
    codes: tuple[str, ...]


def _codes(enum_path: str) -> tuple[str, ...]:
    module, _, name = enum_path.rpartition(".")
    mod = __import__(module, fromlist=[name])
    return tuple(str(m.value) for m in getattr(mod, name))


# Column types as the ingest layer names them (countylab.ingest.schema.COLUMN_TYPES).
_COLUMN_TYPES = ("int64", "float64", "string", "bool", "date", "timestamp")

#: every kind of code the UI shows; the enum of each is named so the test can compare members
KIND_SOURCES: dict[str, tuple[str, str | tuple[str, ...]]] = {
    "grade": ("grade.", "countylab.catalog.grading.Grade"),
    "role": ("label.role.", "countylab.identity.roles.Role"),
    "org_kind": ("orgkind.", "countylab.identity.roles.OrgKind"),
    "job_state": ("jobs.state.", "countylab.jobs.states.JobState"),
    "run_state": ("label.run_state.", "countylab.sandbox.spec.RunState"),
    "stop_reason": ("label.stop_reason.", "countylab.jobs.facts.StopReason"),
    "output_kind": ("label.output_kind.", "countylab.jobs.spec.OutputKind"),
    "release_state": ("airlock.state.", "countylab.airlock.states.ReleaseState"),
    "vote": ("label.vote.", "countylab.airlock.review.VoteChoice"),
    "voter_role": ("label.voter_role.", "countylab.airlock.review.VoterRole"),
    "review_outcome": ("label.review_outcome.", "countylab.airlock.review.Outcome"),
    "check_status": ("label.check_status.", "countylab.airlock.checks.base.CheckStatus"),
    "file_kind": ("label.file_kind.", "countylab.airlock.checks.base.FileKind"),
    "pii": ("pii.", "countylab.catalog.pii.PiiKind"),
    "column_kind": ("query.kind_", "countylab.privacy.spec.ColumnKind"),
    "policy_action": ("label.policy_action.", "countylab.policy.Action"),
    "column_type": ("label.column_type.", _COLUMN_TYPES),
    "model_state": ("model.state.", ("pending", "approved", "rejected")),
    "outcome": ("outcome.", ("ok", "denied", "failed")),
    "connector_status": ("conn.status.", ("running", "succeeded", "failed")),
    "query_status": ("query.status_", ("answered", "cached", "failed", "refused", "running")),
    "grade_change": ("gradechange.", ("proposed", "confirmed", "raised", "lowered")),
    "topup_status": ("label.topup_status.", ("pending", "approved", "refused")),
    "permission": ("label.permission.", "countylab.identity.roles.Permission"),
    "denial_reason": ("label.denial_reason.", ("role", "project_owner", "project_member", "organisation")),
    "version_source": ("label.version_source.", ("upload", "push", "pull", "demo", "pipeline")),
    "version_mode": ("label.version_mode.", ("replace", "append", "upsert", "compaction")),
}


def kinds() -> dict[str, Kind]:
    """The kinds with their codes resolved (imports the domain enums, so not at import time)."""
    out: dict[str, Kind] = {}
    for name, (prefix, source) in KIND_SOURCES.items():
        out[name] = Kind(prefix, _codes(source) if isinstance(source, str) else source)
    return out


def label(kind: str, code: object, lang: str = DEFAULT_LANG) -> str:
    """The name of ``code`` (a string or enum member) of ``kind`` in ``lang``; the code if unknown.

    An unknown code falls back to itself rather than failing: a page must still render when a
    newer server sends a state this build has no word for (the completeness test keeps that rare).
    """
    if code is None or code == "":
        return ""
    value = str(getattr(code, "value", code))
    prefix = KIND_SOURCES[kind][0]
    cat = catalog(normalise(lang))
    return cat.get(prefix + value) or catalog(DEFAULT_LANG).get(prefix + value) or value


# -- audit actions and their details -----------------------------------------------------------

#: action families: the filter on the audit page groups actions by these (the part before the dot)
ACTION_GROUPS = (
    "login",
    "auth",
    "logout",
    "user",
    "token",
    "org",
    "project",
    "grant",
    "dataset",
    "key_set",
    "connector",
    "budget",
    "query",
    "job",
    "quota",
    "release",
    "model",
    "permission",
    "audit",
    "notification",
    "search",
    "scenario",
    "capability",
    "application",
    "accreditation",
    "objection",
    "workflow",
    "ops",
    "map",
    "agreement",
    "authorisation",
    "disclosure",
    "dashboard",
    "bigscreen",
    "showcase",
)


def action_group(action: str) -> str:
    return action.split(".", 1)[0]


def action_label(action: str, lang: str = DEFAULT_LANG) -> str:
    """推送数据 for ``dataset.push``; an action with no word of its own keeps its code."""
    cat = catalog(normalise(lang))
    return cat.get(f"audit.act.{action}") or catalog(DEFAULT_LANG).get(f"audit.act.{action}") or action


def group_label(group: str, lang: str = DEFAULT_LANG) -> str:
    cat = catalog(normalise(lang))
    return cat.get(f"audit.group.{group}") or group


def detail_key_label(key: str, lang: str = DEFAULT_LANG) -> str:
    cat = catalog(normalise(lang))
    return cat.get(f"audit.key.{key}") or key


# Detail values that are codes of a known kind, by the detail's key.
_VALUE_KINDS = {
    "grade": "grade",
    "from_grade": "grade",
    "from": "grade",
    "to": "grade",
    "to_grade": "grade",
    "state": "job_state",
    "stop_reason": "stop_reason",
    "reason_code": "stop_reason",
    "choice": "vote",
    "role": "role",
    "roles": "role",
    "kind": "org_kind",
    "checks_status": "check_status",
    "check_status": "check_status",
    "source": "version_source",
    "mode": "version_mode",
    "permission": "permission",
    "reason": "denial_reason",
}


def detail_value(key: str, value: Any, lang: str = DEFAULT_LANG) -> str:
    """A detail's value as people read it: codes named, times in Beijing time, lists joined."""
    zh = normalise(lang) == "zh-CN"
    if value is None:
        return "—"
    if isinstance(value, bool):
        return ("是" if value else "否") if zh else ("yes" if value else "no")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, list | tuple):
        return (
            "、".join(detail_value(key, v, lang) for v in value)
            if zh
            else ", ".join(detail_value(key, v, lang) for v in value)
        )
    if isinstance(value, Mapping):
        parts = [
            f"{detail_key_label(str(k), lang)}: {detail_value(str(k), v, lang)}" for k, v in value.items()
        ]
        return "；".join(parts) if zh else "; ".join(parts)
    text = str(value)
    kind = _VALUE_KINDS.get(key)
    if kind is not None:
        named = label(kind, text, lang)
        if named != text:
            return named
        if kind == "job_state":  # ``state`` is also used by releases and models
            for other in ("release_state", "model_state"):
                named = label(other, text, lang)
                if named != text:
                    return named
    if key.endswith(("_at", "_ts", "period_start", "period_end")) or key in ("at", "ts", "since", "until"):
        shown = bjtime(text, lang=lang)
        if shown:
            return shown
    return text


def details_pairs(details: Mapping[str, Any] | None, lang: str = DEFAULT_LANG) -> list[tuple[str, str]]:
    """(name, value) pairs of an audit event's details, in the page's language."""
    if not details:
        return []
    keys = sorted(details, key=lambda k: (_DETAIL_ORDER.get(k, len(_DETAIL_ORDER)), k))
    return [(detail_key_label(k, lang), detail_value(k, details[k], lang)) for k in keys]


# Details are stored as canonical (sorted) JSON; people read a period before its counts.
_DETAIL_ORDER = {
    k: i
    for i, k in enumerate(
        [
            "period_start",
            "period_end",
            "batches",
            "rows",
            "failures",
            "first_at",
            "last_at",
            "first_key",
            "last_key",
        ]
    )
}


def details_text(details: Mapping[str, Any] | None, lang: str = DEFAULT_LANG) -> str:
    zh = normalise(lang) == "zh-CN"
    sep, colon = ("；", "：") if zh else ("; ", ": ")
    return sep.join(f"{k}{colon}{v}" for k, v in details_pairs(details, lang))


def target_label(target: str, lang: str = DEFAULT_LANG, titles: Mapping[str, str] | None = None) -> str:
    """``dataset:9`` as ``数据集 人口信息 (#9)`` (or ``数据集 #9`` without a known title)."""
    kind, sep, ident = target.partition(":")
    if not sep:
        return target
    cat = catalog(normalise(lang))
    word = cat.get(f"label.target.{kind}")
    if word is None:
        return target
    title = (titles or {}).get(target)
    return f"{word} {title} (#{ident})" if title else f"{word} #{ident}"


_EXIT = re.compile(r"exit code (-?\d+)")
_QUOTA = re.compile(r"(\w+) quota exceeded")
_MISSING = "missing outputs: "


def job_error(text: str | None, lang: str = DEFAULT_LANG) -> str:
    """A job step's stored error (English, from the sandbox) as people read it in ``lang``.

    The sandbox records ``killed_timeout``, ``exit code 3``, ``bytes quota exceeded`` or
    ``missing outputs: a.csv``; the codes are kept in the record, the page shows the words.
    """
    if not text:
        return ""
    cat = catalog(normalise(lang))
    named = cat.get(f"label.run_state.{text}")
    if named:
        return named
    if m := _EXIT.fullmatch(text):
        return cat["label.job_error.exit"].format(code=m.group(1))
    if m := _QUOTA.fullmatch(text):
        return cat["label.job_error.quota"].format(limit=m.group(1))
    if text.startswith(_MISSING):
        return cat["label.job_error.missing"].format(names=text[len(_MISSING) :])
    return text


# -- times ----------------------------------------------------------------------------------


def to_beijing(value: datetime | date | str | None) -> datetime | None:
    """An aware datetime in Asia/Shanghai; naive values and strings are taken as UTC (how we store)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):  # a plain date has no time zone to convert
        return datetime(value.year, value.month, value.day, tzinfo=BEIJING)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(BEIJING)


def bjtime(value: datetime | date | str | None, format: str = "minute", lang: str = DEFAULT_LANG) -> str:
    """``2026-12-05 20:14`` (Beijing time) for a stored UTC time; '' for none; bad text unchanged.

    ``format`` is a name of :data:`TIME_FORMATS` or a strftime pattern.  A plain date is shown as
    it is: it has no time zone to convert.
    """
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and len(value) == 10 and value[4:5] == "-":  # a calendar date: no zone
        return value
    shown = to_beijing(value)
    if shown is None:
        return "" if value in (None, "") else str(value)
    return shown.strftime(TIME_FORMATS.get(format, format))


def beijing_day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants where a Beijing calendar day starts and ends (end exclusive).

    The audit filter's dates are the dates people see on the page, which are Beijing dates.
    """
    start = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
    end = datetime.fromordinal(day.toordinal() + 1).replace(tzinfo=BEIJING)
    return start.astimezone(UTC), end.astimezone(UTC)


# -- people ---------------------------------------------------------------------------------


def person(display_name: str | None, username: str | None) -> str:
    """The one way a person is named everywhere: ``张三 (zhangsan)``.

    The display name is what colleagues call them; the username is unique and is what they log in
    with and what the audit log stores, so both are shown.  When there is no display name, or it
    is the username itself, the username alone.
    """
    user = (username or "").strip()
    shown = (display_name or "").strip()
    if not shown or shown == user:
        return user or "—"
    if not user:
        return shown
    return f"{shown} ({user})"


def system_name(username: str, lang: str = DEFAULT_LANG) -> str | None:
    """The name of a non-person actor (``system``, ``lab``, ``connector:…``), or None for a person."""
    cat = catalog(normalise(lang))
    found = cat.get(f"label.actor.{username}")
    if found:
        return found
    head, sep, rest = username.partition(":")
    if sep and cat.get(f"label.actor.{head}"):
        return f"{cat[f'label.actor.{head}']} {rest}"
    return None


def dumps_codes(value: Any) -> str:
    """JSON for machines: codes and UTC kept (what ``--json`` prints)."""
    return json.dumps(value, ensure_ascii=False, default=str)
