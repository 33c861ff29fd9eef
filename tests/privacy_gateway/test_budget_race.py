"""Budget race: 100 concurrent queries with budget for 10 — exactly 10 succeed, never overspent.

Threads against the TestClient (each request runs in the app's thread pool, each with its own
database transaction), on SQLite and on PostgreSQL.  The queries are all different (distinct
WHERE constants), so the answer cache cannot serialise them.  The second race puts two
projects on one dataset whose *yearly* ledger (across all projects) is the binding limit.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from countylab.catalog import service as catalog
from countylab.identity import projects as prj
from countylab.identity.access import SYSTEM
from countylab.privacy import budget
from countylab.storage.models import utcnow
from countylab.storage.privacy_models import BudgetEntry, DatasetBudget, PrivacyBudget
from tests.privacy_gateway.conftest import OTHER_PROJECT, ask, client_for, project_id

pytestmark = pytest.mark.slow


def test_hundred_concurrent_queries_with_budget_for_ten(any_demo_lab):
    lab = any_demo_lab
    pid = project_id(lab)
    with lab.tx() as s:
        ds = catalog.get_by_name(s, "residents").id
    steward, dev = client_for(lab, "steward"), client_for(lab, "developer")
    assert steward.put(f"/api/projects/{pid}/budgets/{ds}", json={"epsilon": 1.0}).status_code == 200
    assert ask(dev, "SELECT COUNT(*) FROM residents", pid, None).status_code == 422  # warm the app

    def one(i: int) -> int:
        return ask(dev, f"SELECT COUNT(*) FROM residents WHERE age > {i}", pid, 0.1).status_code

    with ThreadPoolExecutor(max_workers=24) as pool:
        codes = list(pool.map(one, range(100)))
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 90, codes
    with lab.tx() as s:
        rows = list(s.execute(select(PrivacyBudget).where(PrivacyBudget.dataset_id == ds)).scalars())
        assert len(rows) == 2  # the project's ledger and the analyst's
        for r in rows:
            assert r.epsilon_spent == pytest.approx(1.0) and r.epsilon_spent <= 1.0 + 1e-9
        charges = s.execute(select(BudgetEntry).where(BudgetEntry.kind == "charge")).scalars().all()
        assert len(charges) == 20
        assert budget.spent_within_limits(s)
        year = s.execute(select(DatasetBudget).where(DatasetBudget.dataset_id == ds)).scalar_one()
        assert year.epsilon_spent == pytest.approx(1.0)  # the dataset-wide ledger, charged alike
    last = ask(dev, "SELECT COUNT(*) FROM residents WHERE age > 500", pid, 0.1)
    assert last.status_code == 429 and last.json()["error"]["details"]["epsilon_remaining"] < 1e-6


def test_two_projects_race_for_the_last_of_a_datasets_yearly_budget(any_demo_lab):
    """The yearly ledger (一般4级: ε 20 across all projects) has room for 10 queries of 0.1; two
    projects send 30 each at once: exactly 10 are answered and every other ledger agrees."""
    lab = any_demo_lab
    pid, other = project_id(lab), project_id(lab, OTHER_PROJECT)
    with lab.tx() as s:
        ds = catalog.get_by_name(s, "residents").id
        prj.grant_dataset(s, SYSTEM, other, ds)
        s.add(DatasetBudget(dataset_id=ds, year=utcnow().year, epsilon_spent=19.0, delta_spent=0.0))
    dev, researcher = client_for(lab, "developer"), client_for(lab, "researcher")
    for client, project in ((dev, pid), (researcher, other)):
        # warm each cold app once: FastAPI builds a route's state lazily on first use, and doing
        # that from 24 threads at once has raised inside FastAPI (not in the gateway)
        assert ask(client, "SELECT COUNT(*) FROM residents", project, None).status_code == 422

    def one(i: int) -> int:
        client, project = (dev, pid) if i % 2 else (researcher, other)
        return ask(client, f"SELECT COUNT(*) FROM residents WHERE age > {i}", project, 0.1).status_code

    with ThreadPoolExecutor(max_workers=24) as pool:
        codes = list(pool.map(one, range(60)))
    assert codes.count(200) == 10 and codes.count(429) == 50, codes
    with lab.tx() as s:
        year = s.execute(select(DatasetBudget).where(DatasetBudget.dataset_id == ds)).scalar_one()
        assert year.epsilon_spent == pytest.approx(20.0) and year.epsilon_spent <= 20.0 * (1 + 1e-9)
        project_spent = sum(
            r.epsilon_spent
            for r in s.execute(
                select(PrivacyBudget).where(PrivacyBudget.dataset_id == ds, PrivacyBudget.user_id == 0)
            ).scalars()
        )
        assert project_spent == pytest.approx(1.0)  # refused queries left no charge anywhere
        assert budget.spent_within_limits(s)
