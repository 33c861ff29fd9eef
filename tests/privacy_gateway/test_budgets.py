"""Budgets that fit real projects: renewal periods, top-ups decided by the steward, and the
dataset-wide yearly ledger across all projects (charged in the same transaction)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from countylab.audit.log import recent
from countylab.catalog import service as catalog
from countylab.identity import projects as prj
from countylab.identity.access import SYSTEM
from countylab.privacy.ledgers import period_bounds
from countylab.storage.models import utcnow
from countylab.storage.privacy_models import BudgetEntry, DatasetBudget, PrivacyBudget
from tests.privacy_gateway.conftest import (
    ELDERLY_SQL,
    OTHER_PROJECT,
    ask,
    client_for,
    project_id,
    user_id,
)
from tests.support import browser_login


def _residents(lab) -> int:
    with lab.tx() as s:
        return catalog.get_by_name(s, "residents").id


@pytest.mark.parametrize(
    ("now", "period", "start", "end"),
    [
        (
            datetime(2026, 12, 4, 23, tzinfo=UTC),
            "month",
            datetime(2026, 12, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 1, 31, tzinfo=UTC),
            "month",
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 2, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 5, 15, tzinfo=UTC),
            "quarter",
            datetime(2026, 4, 1, tzinfo=UTC),
            datetime(2026, 7, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 11, 2, tzinfo=UTC),
            "quarter",
            datetime(2026, 10, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 7, 9, tzinfo=UTC),
            "year",
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
    ],
)
def test_period_bounds(now, period, start, end):
    assert period_bounds(now, period) == (start, end)


def test_budget_renews_at_the_period_boundary(demo_lab):
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    first = ask(client, ELDERLY_SQL, pid, 1.5)
    assert first.status_code == 200
    project = next(b for b in first.json()["budget"] if b["scope"] == "project")
    start, end = period_bounds(utcnow(), "month")
    assert project["period_start"] == start.isoformat() and project["renews_at"] == end.isoformat()
    assert ask(client, "SELECT COUNT(*) FROM residents", pid, 1.0).status_code == 429  # 2.0 − 1.5 left
    with demo_lab.tx() as s:  # the period ends (as if a month had passed)
        for row in s.execute(select(PrivacyBudget)).scalars():
            row.period_start = start - timedelta(days=31)
            row.period_end = utcnow() - timedelta(seconds=1)
    view = client.get(f"/api/projects/{pid}/budget").json()
    assert all(b["epsilon_spent"] == 0 for b in view["budgets"])  # shown renewed at once
    again = ask(client, "SELECT COUNT(*) FROM residents", pid, 1.0)
    assert again.status_code == 200, again.text
    project = next(b for b in again.json()["budget"] if b["scope"] == "project")
    assert project["epsilon_spent"] == pytest.approx(1.0) and project["renews_at"] == end.isoformat()
    with demo_lab.tx() as s:  # the yearly dataset ledger does not renew with the period
        year = s.execute(select(DatasetBudget)).scalar_one()
        assert year.epsilon_spent == pytest.approx(2.5)


def test_top_up_requested_by_a_member_and_approved_by_the_steward_in_the_ui(demo_lab):
    pid, ds = project_id(demo_lab), _residents(demo_lab)
    dev = client_for(demo_lab, "developer")
    assert ask(dev, ELDERLY_SQL, pid, 2.0).status_code == 200
    assert ask(dev, "SELECT COUNT(*) FROM residents", pid, 0.5).status_code == 429
    # validation: finite, positive, within the grade's per-period cap, with a reason
    for bad in (
        {"epsilon": 0},
        {"epsilon": 99.0},
        {"epsilon": 0.5, "reason": ""},
        {"epsilon": 0.5, "delta": 1.0},
    ):
        body = {"dataset_id": ds, "reason": "x", **bad}
        assert dev.post(f"/api/projects/{pid}/budget-topups", json=body).status_code == 422, bad
    asked = dev.post(
        f"/api/projects/{pid}/budget-topups", json={"dataset_id": ds, "epsilon": 1.0, "reason": "第二轮调查"}
    )
    assert asked.status_code == 200 and asked.json()["status"] == "pending"
    topup = asked.json()["id"]
    assert dev.post(f"/api/budget-topups/{topup}/decision", json={"approve": True}).status_code == 403
    outsider = client_for(demo_lab, "researcher")
    body = {"dataset_id": ds, "epsilon": 1.0, "reason": "x"}
    assert outsider.post(f"/api/projects/{pid}/budget-topups", json=body).status_code == 403
    # the steward decides in the browser: the budget card lists the request with two buttons
    steward = client_for(demo_lab, "steward")
    steward.headers.pop("Authorization")
    csrf = browser_login(steward, "steward", "Demo@2026")
    queue = steward.get("/query/history")  # the steward's queue across projects links to the card
    assert 'id="pending-topups"' in queue.text and "第二轮调查" in queue.text
    page = steward.get(f"/query?project_id={pid}")
    assert (
        page.status_code == 200
        and "第二轮调查" in page.text
        and f"/query/topups/{topup}/decision" in page.text
    )
    done = steward.post(
        f"/query/topups/{topup}/decision",
        data={"project_id": str(pid), "decision": "approve", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers.get("X-Countylab-Outcome") != "refused"
    twice = steward.post(
        f"/query/topups/{topup}/decision",
        data={"project_id": str(pid), "decision": "refuse", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert twice.headers["X-Countylab-Outcome"] == "refused"  # decided once, never again
    resp = ask(dev, "SELECT COUNT(*) FROM residents", pid, 0.5)
    assert resp.status_code == 200, resp.text
    for b in resp.json()["budget"]:  # the project and the analyst ledgers both grew, this period
        assert b["epsilon_topup"] == 1.0 and b["epsilon_limit"] == pytest.approx(3.0)
    with demo_lab.tx() as s:
        kinds = [e.kind for e in s.execute(select(BudgetEntry)).scalars()]
        assert kinds.count("topup") == 1
        actions = {e.action for e in recent(s, action_prefix="budget.topup")}
        assert actions == {"budget.topup_requested", "budget.topup_approved"}
        # the top-up lasts until the period ends
        for row in s.execute(select(PrivacyBudget)).scalars():
            row.period_end = utcnow() - timedelta(seconds=1)
    view = dev.get(f"/api/projects/{pid}/budget").json()
    mine = [b for b in view["budgets"] if b["dataset"] == "residents"]
    assert len(mine) == 2 and all(b["epsilon_topup"] == 0 and b["epsilon_limit"] == 2.0 for b in mine)
    assert view["topups"][0]["status"] == "approved"


def test_a_refused_top_up_changes_nothing(demo_lab):
    pid, ds = project_id(demo_lab), _residents(demo_lab)
    dev, steward = client_for(demo_lab, "developer"), client_for(demo_lab, "steward")
    t = dev.post(
        f"/api/projects/{pid}/budget-topups", json={"dataset_id": ds, "epsilon": 1.0, "reason": "r"}
    ).json()
    refused = steward.post(
        f"/api/budget-topups/{t['id']}/decision", json={"approve": False, "note": "不必要"}
    )
    assert refused.status_code == 200 and refused.json()["status"] == "refused"
    assert steward.get("/api/budget-topups", params={"status": "pending"}).json()["items"] == []
    assert steward.post(f"/api/budget-topups/{t['id']}/decision", json={"approve": True}).status_code == 409
    view = dev.get(f"/api/projects/{pid}/budget").json()
    assert all(b["epsilon_topup"] == 0 for b in view["budgets"])


def test_the_dataset_wide_yearly_ledger_binds_across_projects_atomically(demo_lab):
    """Two projects on one dataset: their sum is capped (一般4级: ε 20 a year), and a query refused
    by the yearly ledger leaves every other ledger untouched (one transaction)."""
    pid, other, ds = project_id(demo_lab), project_id(demo_lab, OTHER_PROJECT), _residents(demo_lab)
    with demo_lab.tx() as s:
        prj.grant_dataset(s, SYSTEM, other, ds)
    dev, researcher = client_for(demo_lab, "developer"), client_for(demo_lab, "researcher")
    assert ask(dev, ELDERLY_SQL, pid, 0.5).status_code == 200
    assert ask(researcher, ELDERLY_SQL, other, 0.5).status_code == 200  # separate cache, separate charge
    with demo_lab.tx() as s:
        year = s.execute(select(DatasetBudget).where(DatasetBudget.dataset_id == ds)).scalar_one()
        assert year.epsilon_spent == pytest.approx(1.0) and year.year == utcnow().year
        year.epsilon_spent = 19.8  # as if other projects had spent most of this year's budget
    refused = ask(researcher, "SELECT COUNT(*) FROM residents", other, 0.5)
    assert refused.status_code == 429, refused.text
    err = refused.json()["error"]
    assert err["details"]["reason"] == "dataset_year_exhausted" and "所有项目" in err["message"]
    with demo_lab.tx() as s:
        rows = s.execute(select(PrivacyBudget).where(PrivacyBudget.project_id == other)).scalars().all()
        assert {r.epsilon_spent for r in rows} == {0.5}  # the project's charge rolled back too
        assert s.execute(select(DatasetBudget)).scalar_one().epsilon_spent == pytest.approx(19.8)
    assert ask(dev, "SELECT COUNT(*) FROM residents", pid, 0.2).status_code == 200  # exactly to the cap
    view = dev.get(f"/api/projects/{pid}/budget").json()
    year_view = next(y for y in view["datasets_year"] if y["dataset"] == "residents")
    assert year_view["epsilon_remaining"] == pytest.approx(0.0, abs=1e-9)
    assert year_view["renews_at"].startswith(f"{utcnow().year + 1}-01-01")


def test_budget_card_shows_the_period_and_what_renews_when(demo_lab):
    pid = project_id(demo_lab)
    client = client_for(demo_lab, "developer")
    client.headers.pop("Authorization")
    browser_login(client, "developer", "Demo@2026")
    page = client.get(f"/query?project_id={pid}")
    _, end = period_bounds(utcnow(), "month")
    assert 'id="budget-period"' in page.text and end.date().isoformat() in page.text
    assert 'id="year-table"' in page.text and 'id="topup-form"' in page.text
    assert user_id(demo_lab, "developer") > 0
