"""A showcase metric is checked by the DP gateway when it is saved (API, form), not first when it
is refreshed: the gateway's own pre-spend step (``QueryGateway.check``) parses and plans the SQL as
the showcase service account, so an unknown table or column, a query that is not an aggregate, an
identifier column or an ε the grade does not allow is refused at save with the gateway's message,
and nothing is stored, granted, charged, run or audited."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from countylab.errors import ValidationFailed
from countylab.lab import Lab
from countylab.showcase import metrics
from countylab.storage.dashboard_models import ShowcaseMetric
from countylab.storage.models import AuditEvent, Grant
from countylab.storage.privacy_models import BudgetEntry
from countylab.web.app import create_app
from tests.showcase.dashboard_fixtures import *  # noqa: F403 - the fixtures dash_template and dash_lab
from tests.showcase.dashboard_fixtures import ELDERLY_SQL, dataset_id, principal, query_runs
from tests.support import api_client, browser_login

#: kind → (SQL, ε, the gateway's own words in Chinese, in English)
BAD: dict[str, tuple[str, float, str, str]] = {
    "unknown_table": (
        "SELECT COUNT(*) AS n FROM nosuch_table",
        0.5,
        "表 nosuch_table 不存在或未授权本项目使用",
        "table nosuch_table does not exist",
    ),
    "unknown_column": (  # of a dataset the showcase project has no grant for yet
        "SELECT COUNT(*) AS n FROM households WHERE nosuch_col > 1",
        0.5,
        "列不存在或有歧义：nosuch_col",
        "unknown or ambiguous column: nosuch_col",
    ),
    "not_aggregate": (
        "SELECT town_code, age FROM residents",
        0.5,
        "非聚合列必须出现在 GROUP BY 中：town_code",
        "non-aggregate columns must be in GROUP BY: town_code",
    ),
    "identifier_column": (
        "SELECT name, COUNT(*) AS n FROM residents GROUP BY name",
        0.5,
        "不能按标识列或隐私主体列分组：name",
        "cannot GROUP BY an identifier or the privacy unit: name",
    ),
    "epsilon_cap": (ELDERLY_SQL, 9.5, "ε 过大：每次查询 ε ≤ 2", "epsilon too large: at most 2 per query"),
}


def _trace(lab: Lab) -> dict[str, Any]:
    """Everything a save could leave behind: ledger entries, query runs, metrics, grants, audit."""
    with lab.read() as s:
        return {
            "budget": s.execute(select(BudgetEntry.id, BudgetEntry.epsilon).order_by(BudgetEntry.id)).all(),
            "runs": query_runs(lab),
            "metrics": s.execute(select(ShowcaseMetric.name).order_by(ShowcaseMetric.id)).all(),
            "grants": s.execute(select(Grant.project_id, Grant.dataset_id).order_by(Grant.id)).all(),
            "audit": s.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
        }


def _steward_id(lab: Lab) -> int:
    uid = principal(lab, "steward").user_id
    assert uid is not None
    return uid


@pytest.mark.parametrize("kind", list(BAD))
def test_the_api_refuses_at_save_what_the_gateway_would_refuse(dash_lab: Lab, kind: str) -> None:
    sql, eps, zh, en = BAD[kind]
    client = api_client(dash_lab, _steward_id(dash_lab))
    before = _trace(dash_lab)
    body = {"name": "bad_one", "title": "待检查", "sql": sql, "epsilon": eps, "schedule": "daily"}
    resp = client.post("/api/showcase/metrics", json=body)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_failed" and zh in error["message"], error
    assert error["details"]["field"] == ("epsilon" if kind == "epsilon_cap" else "sql")
    english = client.post("/api/showcase/metrics", json=body, headers={"Accept-Language": "en"})
    assert en in english.json()["error"]["message"]
    assert _trace(dash_lab) == before  # no metric, no grant, no charge, no run, no audit event


def test_the_domain_refusal_is_the_gateways_and_rolls_back_the_system_grant(dash_lab: Lab) -> None:
    """The grant a new metric's dataset gets from the system is not kept when the SQL is refused."""
    with dash_lab.read() as s:
        project = metrics.showcase_project(s)
        assert project is not None
    before = _trace(dash_lab)
    sql, _, zh, en = BAD["unknown_column"]
    with pytest.raises(ValidationFailed) as refused, dash_lab.tx() as s:
        metrics.create(
            s,
            principal(dash_lab, "steward"),
            name="bad_one",
            title="待检查",
            sql=sql,
            epsilon=0.5,
            gateway=dash_lab.gateway,
        )
    assert refused.value.message("zh-CN") == zh and refused.value.message("en") == en
    assert refused.value.details["column"] == "nosuch_col"
    assert _trace(dash_lab) == before
    with dash_lab.read() as s:
        granted = s.execute(select(Grant.dataset_id).where(Grant.project_id == project.id)).scalars()
        assert dataset_id(dash_lab, "households") not in set(granted)


def test_the_form_shows_the_gateways_refusal_and_stores_nothing(dash_lab: Lab) -> None:
    client = TestClient(create_app(dash_lab))
    csrf = browser_login(client, "steward", "Demo@2026")
    before = _trace(dash_lab)
    sql, eps, zh, _ = BAD["unknown_column"]
    form = {"name": "bad_form", "title": "坏指标", "sql": sql, "epsilon": str(eps), "csrf_token": csrf}
    resp = client.post("/dashboards/metrics", data=form)
    assert resp.status_code == 200 and resp.url.path == "/dashboards"
    flash = re.search(r'class="flash[^"]*error[^"]*"[^>]*>(.*?)<', resp.text, re.S)
    assert flash and zh in flash.group(1), resp.text[:2000]
    assert "bad_form" not in resp.text
    assert _trace(dash_lab) == before


def test_a_good_metric_saves_without_spending_and_then_refreshes(dash_lab: Lab) -> None:
    client = api_client(dash_lab, _steward_id(dash_lab))
    before = _trace(dash_lab)
    body = {"name": "good_one", "title": "独居高龄老人", "sql": ELDERLY_SQL, "epsilon": 0.5}
    saved = client.post("/api/showcase/metrics", json=body)
    assert saved.status_code == 200, saved.text
    after_save = _trace(dash_lab)
    assert after_save["budget"] == before["budget"] and after_save["runs"] == before["runs"]
    assert after_save["metrics"] == [*before["metrics"], ("good_one",)]
    mid = saved.json()["id"]
    out = client.post(f"/api/showcase/metrics/{mid}/refresh").json()
    assert not out["stale"] and out["epsilon_spent"] == pytest.approx(0.5)
    assert out["result"]["columns"] == ["town_code", "n"]
    assert len(_trace(dash_lab)["budget"]) == len(before["budget"]) + 2  # project and service ledgers


def test_a_new_epsilon_is_checked_when_saved(dash_lab: Lab) -> None:
    client = api_client(dash_lab, _steward_id(dash_lab))
    body = {"name": "eps_one", "title": "独居高龄老人", "sql": ELDERLY_SQL, "epsilon": 0.5}
    mid = client.post("/api/showcase/metrics", json=body).json()["id"]
    before = _trace(dash_lab)
    resp = client.put(
        f"/api/showcase/metrics/{mid}", json={"title": "改", "epsilon": 9.5, "schedule": "weekly"}
    )
    assert resp.status_code == 422 and BAD["epsilon_cap"][2] in resp.json()["error"]["message"]
    assert _trace(dash_lab) == before
    with dash_lab.read() as s:
        m = metrics.get(s, mid)
        assert (m.title, m.epsilon, m.schedule) == ("独居高龄老人", 0.5, "daily")
    ok = client.put(
        f"/api/showcase/metrics/{mid}", json={"title": "改", "epsilon": 1.0, "schedule": "weekly"}
    )
    assert ok.status_code == 200 and ok.json()["epsilon"] == 1.0
