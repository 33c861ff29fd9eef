"""The audit page people can read: filters, Chinese names, Beijing time, paging, CSV/XLSX exports.

Pinned here: a known UTC time shows 8 hours later; actions, outcomes and detail names are Chinese
on the Chinese page (codes stay only in titles); each filter (person, action family or exact
action, target, outcome, Beijing dates) narrows the events in the page, the API and the export
alike; a bad date is a bilingual 422; exports are a UTF-8 CSV with a BOM and a real XLSX; and an
export is itself an audit event.  Events are written at chosen times by setting the audit log's
clock (the chain still hashes each stored time), so Beijing-date edges can be tested.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient

from countylab import audit
from countylab.audit import log as audit_log
from countylab.lab import Lab
from countylab.storage.models import AuditEvent, User
from countylab.web.app import create_app
from tests.support import api_client, browser_login, build_lab, create_user


def _at(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, when: datetime, actor: str, action: str, **kw: Any
) -> None:
    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Clock:  # type: ignore[override]
            return cls.fromtimestamp(when.timestamp(), tz)

    with monkeypatch.context() as m:
        m.setattr(audit_log, "datetime", Clock)
        with lab.tx() as s:
            audit.append(s, actor_id=None, actor=actor, action=action, **kw)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Lab, TestClient]:
    lab = build_lab(tmp_path)
    sid = create_user(lab, "steward1", ["steward"])
    create_user(lab, "prov", ["provider"])
    with lab.tx() as s:
        s.get(User, sid).display_name = "王安全"  # type: ignore[union-attr]
        s.query(User).filter_by(username="prov").one().display_name = "李提供"
    # 2025-06-04 15:59 UTC is 23:59 on the 4th in Beijing; 16:00 UTC is 00:00 on the 5th.
    _at(
        lab,
        monkeypatch,
        datetime(2025, 6, 4, 15, 59, tzinfo=UTC),
        "prov",
        "dataset.push",
        target="dataset:1",
        details={"rows": 12345, "to_grade": "general_2"},
    )
    _at(
        lab,
        monkeypatch,
        datetime(2025, 6, 4, 16, 0, tzinfo=UTC),
        "prov",
        "dataset.create",
        target="dataset:2",
    )
    _at(
        lab,
        monkeypatch,
        datetime(2025, 6, 5, 4, 14, tzinfo=UTC),
        "steward1",
        "grant.create",
        target="project:1",
        details={"dataset_id": 2},
    )
    _at(
        lab,
        monkeypatch,
        datetime(2025, 6, 5, 5, 0, tzinfo=UTC),
        "prov",
        "permission.denied",
        target="audit",
        outcome="denied",
        details={"permission": "audit.read"},
    )
    client = TestClient(create_app(lab), raise_server_exceptions=False)
    browser_login(client, "steward1")
    return lab, client


def _ids(html: str) -> list[str]:
    import re

    return re.findall(r'<tr class="outcome-\w+"><td>(\d+)</td>', html)


def test_page_shows_names_people_and_beijing_time(world: tuple[Lab, TestClient]) -> None:
    _, client = world
    html = client.get("/audit").text
    assert "推送数据" in html and "李提供 (prov)" in html and "王安全 (steward1)" in html
    assert "一般数据2级" in html and '行数：<span class="data">12,345</span>' in html
    assert "2025-06-04 23:59:00" in html and "2025-06-05 12:14:00" in html  # UTC + 8 h
    assert "时间（北京时间）" in html and "拒绝" in html and "数据集 #1" in html and "项目 #1" in html
    assert ">dataset.push<" not in html and "+00:00<" not in html and "general_2" not in html
    client.cookies.set("lang", "en")
    en = client.get("/audit").text
    assert "data pushed" in en and "Time (Beijing)" in en and 'rows: <span class="data">12,345</span>' in en


def test_filters_narrow_page_api_and_export_alike(world: tuple[Lab, TestClient]) -> None:
    lab, client = world
    # every case ends in 2025: the users' creation and the steward's login happen "now"
    cases: list[tuple[dict[str, str], int]] = [
        ({"user": "prov"}, 3),
        ({"action": "group:dataset"}, 2),
        ({"action": "dataset.push"}, 1),
        ({"target": "dataset:"}, 2),
        ({"outcome": "denied"}, 1),
        ({"since": "2025-06-05"}, 3),  # 16:00 UTC on the 4th is already the 5th in Beijing
        ({"until": "2025-06-04"}, 1),
        ({"since": "2025-06-05", "user": "prov", "action": "group:dataset"}, 1),
        ({"since": "2025-06-06"}, 0),
    ]
    with lab.read() as s:
        steward = s.query(User).filter_by(username="steward1").one().id
    api = api_client(lab, steward)
    for case, n in cases:
        params = {"until": "2025-12-31", **case}
        page = client.get("/audit", params=params)
        assert page.status_code == 200, params
        assert len(_ids(page.text)) == n, params
        assert len(api.get("/api/audit", params={**params, "limit": 100}).json()["items"]) == n, params
        exported = client.get("/audit/export.csv", params=params)
        assert len(list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))) == n + 1, params


def test_bad_filters_are_bilingual_errors(world: tuple[Lab, TestClient]) -> None:
    lab, client = world
    with lab.read() as s:
        steward = s.query(User).filter_by(username="steward1").one().id
    resp = api_client(lab, steward).get("/api/audit", params={"since": "5/12/2026"})
    assert resp.status_code == 422
    assert "年-月-日" in resp.text
    en = api_client(lab, steward).get(
        "/api/audit", params={"since": "5/12/2026"}, headers={"Accept-Language": "en"}
    )
    assert "year-month-day" in en.text
    assert api_client(lab, steward).get("/api/audit", params={"outcome": "nope"}).status_code == 422
    page = client.get("/audit", params={"since": "2026-12-06", "until": "2026-12-01"})
    assert page.status_code == 422 and "开始日期晚于结束日期" in page.text


def test_exports_open_in_excel_and_are_audited(world: tuple[Lab, TestClient]) -> None:
    lab, client = world
    resp = client.get("/audit/export.csv", params={"user": "prov"})
    assert resp.status_code == 200 and resp.content.startswith(b"\xef\xbb\xbf")
    assert "filename*=UTF-8''" in resp.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["序号", "时间（北京时间）", "操作者", "操作"]
    assert rows[1][1] == "2025-06-04 23:59:00" and rows[1][2] == "李提供 (prov)" and rows[1][3] == "推送数据"
    assert rows[1][4] == "数据集 #1"  # the target named as on the page (no dataset 1 in this lab)
    assert rows[1][7] == "dataset.push" and rows[1][8] == "dataset:1"  # codes and UTC kept
    assert rows[1][9].endswith("+00:00")
    xlsx = client.get("/audit/export.xlsx", params={"action": "group:dataset"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    values = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
    flat = [str(v) for row in values for v in row if v is not None]
    assert "推送数据" in flat and "登记数据集" in flat and "时间（北京时间）" in flat
    with lab.read() as s:
        exports = s.query(AuditEvent).filter_by(action="audit.export").order_by(AuditEvent.id).all()
    assert [e.actor for e in exports] == ["steward1", "steward1"]
    assert '"count":3' in exports[0].details and '"format":"csv"' in exports[0].details
    assert '"action":"group:dataset"' in exports[1].details


def test_api_export_and_refusal(world: tuple[Lab, TestClient]) -> None:
    lab, _ = world
    with lab.read() as s:
        steward = s.query(User).filter_by(username="steward1").one().id
        prov = s.query(User).filter_by(username="prov").one().id
    resp = api_client(lab, steward).get("/api/audit/export", params={"format": "xlsx", "outcome": "denied"})
    assert resp.status_code == 200 and resp.content[:2] == b"PK"
    assert api_client(lab, prov).get("/api/audit/export").status_code == 403
    assert api_client(lab, prov).get("/audit/export.csv").status_code in (401, 403)


def test_paging_walks_every_event_once(
    world: tuple[Lab, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    lab, client = world
    for i in range(120):
        _at(
            lab,
            monkeypatch,
            datetime(2025, 6, 1, 1, i % 60, tzinfo=UTC),
            "prov",
            "query.run",
            details={"i": i},
        )
    seen: list[str] = []
    url: str | None = "/audit?action=query.run"
    while url:
        html = client.get(url).text
        seen += _ids(html)
        import re

        m = re.search(r'<a href="([^"]+)" id="older">', html)
        url = m.group(1).replace("&amp;", "&") if m else None
    assert len(seen) == 120 == len(set(seen))
    assert "共 120 条符合条件的事件" in client.get("/audit?action=query.run").text


def test_too_many_events_for_one_export_is_a_clear_refusal(
    world: tuple[Lab, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    from countylab.audit import search

    _, client = world
    monkeypatch.setattr(search, "EXPORT_MAX_XLSX_ROWS", 2)
    params = {"until": "2025-12-31"}
    refused = client.get("/audit/export.xlsx", params=params)
    assert refused.status_code == 422 and "请缩小日期范围" in refused.text
    assert client.get("/audit/export.csv", params=params).status_code == 200
