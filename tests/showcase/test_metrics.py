"""Showcase DP metrics: charged once to the showcase budget, cached with intervals, refreshed on the
steward's schedule by the background refresher (by ``lab.clock``), stale with the reason when the
budget cannot pay, and never queried at view time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from countylab.lab import Lab
from countylab.privacy import budget
from countylab.showcase import dashboards, metrics
from countylab.showcase.widgets import WidgetSpec
from countylab.storage.dashboard_models import ShowcaseMetric
from countylab.storage.models import Grant, Project
from countylab.storage.privacy_models import BudgetEntry
from countylab.web.app import create_app
from tests.showcase.dashboard_fixtures import *  # noqa: F403 - the fixtures dash_template and dash_lab
from tests.showcase.dashboard_fixtures import ELDERLY_SQL, dataset_id, principal, query_runs
from tests.support import browser_login

_DEMO_CHARGES: dict[int, int] = {}


def _metric(lab: Lab, schedule: str = "daily", epsilon: float = 0.5) -> int:
    with lab.read() as s:
        last = s.execute(select(func.max(BudgetEntry.id))).scalar()
        _DEMO_CHARGES.setdefault(id(lab), int(last or 0))
    with lab.tx() as s:
        return metrics.create(
            s,
            principal(lab, "steward"),
            name="alone",
            title="独居高龄老人",
            sql=ELDERLY_SQL,
            epsilon=epsilon,
            schedule=schedule,
            gateway=lab.gateway,
        ).id


def _charges(lab: Lab) -> list[tuple[int, float]]:
    """Charges of the showcase project after the demo's own (the demo refreshes its metrics)."""
    with lab.read() as s:
        project = metrics.showcase_project(s)
        assert project is not None
        rows = s.execute(
            select(BudgetEntry.user_id, BudgetEntry.epsilon).where(
                BudgetEntry.project_id == project.id,
                BudgetEntry.kind == "charge",
                BudgetEntry.id > _DEMO_CHARGES.get(id(lab), 0),
            )
        ).all()
        return [(int(u), float(e)) for u, e in rows]


def test_the_showcase_project_gets_its_datasets_from_the_system(dash_lab: Lab) -> None:
    _metric(dash_lab)
    with dash_lab.read() as s:
        project = s.execute(select(Project).where(Project.slug == "showcase")).scalar_one()
        assert project.title == "成果展示" and project.org is not None and project.org.kind == "platform"
        granted = set(s.execute(select(Grant.dataset_id).where(Grant.project_id == project.id)).scalars())
    assert granted == {dataset_id(dash_lab, "residents")}


def test_a_refresh_charges_the_budget_once_and_caches(dash_lab: Lab) -> None:
    mid = _metric(dash_lab)
    steward = principal(dash_lab, "steward")
    out = metrics.refresh(dash_lab, steward, mid)
    assert not out["stale"] and out["epsilon_spent"] == pytest.approx(0.5)
    charges = _charges(dash_lab)
    assert sorted(e for _, e in charges) == [0.5, 0.5]  # the project's ledger and the service's, once each
    assert len({u for u, _ in charges}) == 2
    result = out["result"]
    assert result["columns"] == ["town_code", "n"] and result["intervals"]["n"]
    # unchanged data: the gateway answers from its cache, nothing more is charged
    again = metrics.refresh(dash_lab, steward, mid)
    assert again["result"] == result and _charges(dash_lab) == charges


def test_budget_exhausted_keeps_the_cached_value_stale_with_the_reason(dash_lab: Lab) -> None:
    mid = _metric(dash_lab)
    steward = principal(dash_lab, "steward")
    first = metrics.refresh(dash_lab, steward, mid)
    with dash_lab.tx() as s:  # the steward caps the showcase budget at what is spent
        project = metrics.showcase_project(s)
        assert project is not None
        budget.set_limit(s, steward, project.id, dataset_id(dash_lab, "residents"), epsilon=0.5, delta=None)
        metrics.update(
            s, steward, mid, title="独居高龄老人", epsilon=0.8, schedule="daily", gateway=dash_lab.gateway
        )  # a new question
    out = metrics.refresh(dash_lab, steward, mid)
    assert out["stale"] and out["result"] == first["result"]
    assert "隐私预算不足" in out["stale_reason"] and "budget" in out["stale_reason_en"]
    client = TestClient(create_app(dash_lab))
    browser_login(client, "steward", "Demo@2026")
    page = client.get("/dashboards")
    assert "隐私预算不足" in page.text and "已过期" in page.text


def test_the_refresher_follows_the_schedule_by_the_lab_clock(dash_lab: Lab) -> None:
    with dash_lab.tx() as s:  # the demo's own metrics stay out of the count
        s.execute(update(ShowcaseMetric).values(schedule="manual"))
    daily = _metric(dash_lab, "daily")
    with dash_lab.tx() as s:
        manual = metrics.create(
            s,
            principal(dash_lab, "steward"),
            name="manual_one",
            title="手动",
            sql=ELDERLY_SQL,
            epsilon=0.1,
            schedule="manual",
            gateway=dash_lab.gateway,
        ).id
    refresher = metrics.MetricRefresher(dash_lab)
    assert refresher.run_once() == 2  # both have no value yet
    assert refresher.run_once() == 0  # nothing due
    start = dash_lab.clock()
    dash_lab.clock = lambda: start + timedelta(hours=23)
    assert refresher.run_once() == 0
    dash_lab.clock = lambda: start + timedelta(days=1, minutes=1)
    assert refresher.run_once() == 1
    with dash_lab.read() as s:
        d, m = s.get(ShowcaseMetric, daily), s.get(ShowcaseMetric, manual)
        assert d is not None and m is not None
        assert d.refreshed_at is not None and m.refreshed_at is not None
        assert metrics.next_due(m) is None and metrics.next_due(d) is not None


def test_no_query_runs_when_pages_are_viewed(dash_lab: Lab) -> None:
    mid = _metric(dash_lab)
    steward = principal(dash_lab, "steward")
    metrics.refresh(dash_lab, steward, mid)
    with dash_lab.tx() as s:
        d = dashboards.create(s, steward, slug="views", title="看")
        dashboards.add_widget(
            s, steward, dash_lab.ingestion, d.id, WidgetSpec("bar", "独居", "dp", {"metric_id": mid})
        )
        board = d.id
    runs = query_runs(dash_lab)
    client = TestClient(create_app(dash_lab))
    browser_login(client, "leader", "Demo@2026")
    for url in ("/dashboards", f"/dashboards/{board}", f"/api/dashboards/{board}", "/api/showcase/metrics"):
        assert client.get(url).status_code == 200, url
    assert query_runs(dash_lab) == runs
