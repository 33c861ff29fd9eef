"""Finding audit events: by person, action (or action family), target, outcome and Beijing date.

One filter object serves the audit page, ``GET /api/audit``, the exports and the CLI, so the same
question gives the same events everywhere.  Dates are the calendar dates people see on the page,
which are Beijing dates: 2026-12-05 means 2026-12-04 16:00 to 2026-12-05 16:00 UTC.  Events store
their time as ISO-8601 UTC text of one fixed width, so comparing text compares times and the
date filter uses the primary-key-ordered table without parsing a row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from countylab import labels
from countylab.audit.log import AuditRecord, to_record
from countylab.errors import ValidationFailed
from countylab.storage.models import AuditEvent

#: most events one export writes; a county's year of events after summarised pushes fits easily
EXPORT_MAX_ROWS = 200_000
#: an XLSX is built in memory and opened by people; beyond this, CSV (as for dataset downloads)
EXPORT_MAX_XLSX_ROWS = 100_000
OUTCOMES = ("ok", "denied", "failed")
GROUP_PREFIX = "group:"
#: the audited event of an export (who took a copy of which part of the log)
EXPORT_ACTION = "audit.export"


@dataclass(frozen=True)
class AuditFilter:
    """What to look for; empty fields match everything.

    ``action`` is an exact action (``dataset.push``) or a family ``group:dataset`` (every
    ``dataset.*`` action).  ``target`` matches the start of the target (``dataset:3`` or
    ``dataset:``).  ``since`` and ``until`` are Beijing dates, both included.
    """

    actor: str = ""
    action: str = ""
    target: str = ""
    outcome: str = ""
    since: date | None = None
    until: date | None = None

    def __post_init__(self) -> None:
        if self.outcome and self.outcome not in OUTCOMES:
            raise ValidationFailed(
                f"结果只能是 {'、'.join(OUTCOMES)}",
                f"outcome must be one of {', '.join(OUTCOMES)}",
                field="outcome",
            )
        if self.since and self.until and self.since > self.until:
            raise ValidationFailed(
                "开始日期晚于结束日期", "the start date is after the end date", field="since"
            )

    @classmethod
    def parse(
        cls,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> AuditFilter:
        """From query-string text; a malformed date is a bilingual error naming the field."""
        return cls(
            actor=(actor or "").strip(),
            action=(action or "").strip(),
            target=(target or "").strip(),
            outcome=(outcome or "").strip(),
            since=_date(since, "since"),
            until=_date(until, "until"),
        )

    def query_args(self) -> dict[str, str]:
        """The filter as query-string arguments (for paging and export links)."""
        out = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(self).items()}
        return {k: v for k, v in out.items() if v}

    def describe(self) -> dict[str, Any]:
        return self.query_args()


def _date(text: str | None, field: str) -> date | None:
    if not text or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(
            f"日期格式应为 年-月-日（如 2026-12-05）：{text[:40]}",
            f"dates are written year-month-day (e.g. 2026-12-05): {text[:40]}",
            field=field,
        ) from None


def _ts(moment: datetime) -> str:
    """The stored text form of an instant (see ``audit.log.append``)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _where(q: Select[Any], f: AuditFilter) -> Select[Any]:
    if f.actor:
        q = q.where(AuditEvent.actor == f.actor)
    if f.action.startswith(GROUP_PREFIX):
        group = f.action[len(GROUP_PREFIX) :]
        q = q.where(
            or_(AuditEvent.action == group, AuditEvent.action.startswith(group + ".", autoescape=True))
        )
    elif f.action:
        q = q.where(AuditEvent.action == f.action)
    if f.target:
        q = q.where(AuditEvent.target.startswith(f.target, autoescape=True))
    if f.outcome:
        q = q.where(AuditEvent.outcome == f.outcome)
    if f.since:
        q = q.where(AuditEvent.ts >= _ts(labels.beijing_day_bounds(f.since)[0]))
    if f.until:
        q = q.where(AuditEvent.ts < _ts(labels.beijing_day_bounds(f.until)[1]))
    return q


def find(
    session: Session, f: AuditFilter, *, limit: int = 50, before_id: int | None = None
) -> list[AuditRecord]:
    """The newest ``limit`` matching events older than ``before_id`` (keyset paging, newest first)."""
    q = _where(select(AuditEvent), f).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id:
        q = q.where(AuditEvent.id < before_id)
    return [to_record(ev) for ev in session.execute(q).scalars()]


def count(session: Session, f: AuditFilter) -> int:
    return int(session.execute(_where(select(func.count()).select_from(AuditEvent), f)).scalar_one())


def actors(session: Session) -> list[str]:
    """Every name that appears as an actor (people, ``system``, feeds), for the person filter."""
    return sorted(session.execute(select(AuditEvent.actor).distinct()).scalars())


def for_export(session: Session, f: AuditFilter, max_rows: int = EXPORT_MAX_ROWS) -> list[AuditRecord]:
    """Matching events oldest first, as an auditor reads a ledger; refuses more than ``max_rows``."""
    n = count(session, f)
    if n > max_rows:
        raise ValidationFailed(
            f"符合条件的事件有 {n} 条，超过单次导出上限 {max_rows} 条，请缩小日期范围",
            f"{n} events match, more than the {max_rows} one export holds; narrow the dates",
            field="since",
        )
    q = _where(select(AuditEvent), f).order_by(AuditEvent.id)
    return [to_record(ev) for ev in session.execute(q).scalars()]


def to_table(
    events: list[AuditRecord],
    lang: str,
    name_of: dict[str, str] | None = None,
    titles: dict[str, str] | None = None,
) -> pa.Table:
    """The events as people read them: Beijing time, named person, action and outcome, readable details.

    The code columns (action code, UTC time, hash) are kept beside the names, so an exported file
    can still be matched against ``countylab audit verify`` and the API.
    """
    names = name_of or {}
    cols: dict[str, list[Any]] = {
        "id": [e.id for e in events],
        "time": [labels.bjtime(e.ts, "second") for e in events],
        "person": [names.get(e.actor) or labels.system_name(e.actor, lang) or e.actor for e in events],
        "action": [labels.action_label(e.action, lang) for e in events],
        "target": [labels.target_label(e.target, lang, titles) for e in events],
        "outcome": [labels.label("outcome", e.outcome, lang) for e in events],
        "details": [labels.details_text(e.details, lang) for e in events],
        "action_code": [e.action for e in events],
        "target_code": [e.target for e in events],
        "ts_utc": [e.ts for e in events],
        "hash": [e.hash for e in events],
    }
    return pa.table({k: pa.array(v, pa.int64() if k == "id" else pa.string()) for k, v in cols.items()})


def headers(lang: str) -> dict[str, str]:
    """Column titles of :func:`to_table` in ``lang`` (from the catalogs, like every UI word)."""
    from countylab.i18n import translator

    t = translator(lang)
    return {
        k: t(f"auditlog.col.{k}")
        for k in (
            "id",
            "time",
            "person",
            "action",
            "target",
            "outcome",
            "details",
            "action_code",
            "target_code",
            "ts_utc",
            "hash",
        )
    }
