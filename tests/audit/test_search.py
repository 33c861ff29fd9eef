"""The audit filter on SQLite and PostgreSQL: Beijing-date edges, families, targets, outcomes.

Events are written at chosen instants by setting the audit log's clock; the stored times are
ISO-8601 UTC text compared as text, which both databases must order like times.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from countylab import audit
from countylab.audit import log as audit_log
from countylab.audit import search
from countylab.errors import ValidationFailed
from countylab.lab import Lab
from tests.support import build_lab

MOMENTS = [  # (UTC instant, actor, action, target, outcome)
    (datetime(2025, 6, 4, 15, 59, 59, 999999, tzinfo=UTC), "prov", "dataset.push", "dataset:1", "ok"),
    (datetime(2025, 6, 4, 16, 0, tzinfo=UTC), "prov", "dataset.create", "dataset:12", "ok"),
    (datetime(2025, 6, 5, 15, 59, tzinfo=UTC), "steward", "grant.create", "project:1", "ok"),
    (datetime(2025, 6, 5, 16, 0, tzinfo=UTC), "prov", "permission.denied", "audit", "denied"),
    (datetime(2025, 6, 6, 1, 0, tzinfo=UTC), "prov", "dataset", "dataset:1", "ok"),
]


def _write(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    for when, actor, action, target, outcome in MOMENTS:

        class Clock(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Clock:  # type: ignore[override]
                return cls.fromtimestamp(when.timestamp(), tz)

        with monkeypatch.context() as m:
            m.setattr(audit_log, "datetime", Clock)
            with lab.tx() as s:
                audit.append(s, actor_id=None, actor=actor, action=action, target=target, outcome=outcome)


def test_filters_on_both_databases(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = build_lab(tmp_path, db_url)
    try:
        _write(lab, monkeypatch)
        year = {"until": date(2025, 12, 31)}

        def n(**kw: Any) -> int:
            f = search.AuditFilter(**{**year, **kw})
            with lab.read() as s:
                found = search.find(s, f, limit=100)
                assert len(found) == search.count(s, f)
                return len(found)

        assert n() == 5
        assert (
            n(since=date(2025, 6, 5), until=date(2025, 6, 5)) == 2
        )  # 16:00 UTC on the 4th .. 15:59 on the 5th
        assert n(until=date(2025, 6, 4)) == 1  # 23:59:59.999999 Beijing is still the 4th
        assert n(since=date(2025, 6, 6)) == 2
        assert n(action="group:dataset") == 3  # dataset.* and a bare "dataset"
        assert n(action="dataset.push") == 1
        assert n(target="dataset:1") == 3  # a prefix: dataset:1 and dataset:12
        assert n(target="dataset:1_") == 0  # LIKE wildcards are literal
        assert n(outcome="denied") == 1 and n(actor="steward") == 1
        with lab.read() as s:
            assert [e.action for e in search.for_export(s, search.AuditFilter(**year))][0] == "dataset.push"
            with pytest.raises(ValidationFailed):
                search.for_export(s, search.AuditFilter(**year), max_rows=4)
    finally:
        lab.close()


def test_parse_refuses_bad_input_with_the_field_named() -> None:
    with pytest.raises(ValidationFailed) as bad:
        search.AuditFilter.parse(since="2025/06/05")
    assert bad.value.details.get("field") == "since"
    with pytest.raises(ValidationFailed):
        search.AuditFilter.parse(outcome="maybe")
    with pytest.raises(ValidationFailed):
        search.AuditFilter.parse(since="2025-06-06", until="2025-06-05")
    f = search.AuditFilter.parse(actor=None, action=" group:job ", since="2025-06-05")
    assert f.query_args() == {"action": "group:job", "since": "2025-06-05"}
