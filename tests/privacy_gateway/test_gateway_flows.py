"""Who may ask what, budgets, no exact mode, AS OF versions, history and audit — through the API."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from countylab.audit.log import recent
from countylab.catalog import service as catalog
from countylab.identity import projects as prj
from countylab.identity.access import SYSTEM
from countylab.storage.privacy_models import BudgetEntry
from tests.privacy_gateway.conftest import (
    ELDERLY_SQL,
    OTHER_PROJECT,
    ask,
    client_for,
    principal,
    project_id,
    user_id,
)


def _dataset_id(lab, name: str) -> int:
    with lab.tx() as s:
        return catalog.get_by_name(s, name).id


def test_the_elderly_question_gets_noisy_counts_for_every_town_with_intervals(demo_lab):
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    resp = ask(client, ELDERLY_SQL, pid, 0.5)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["columns"] == ["town_code", "count(*)"]
    with demo_lab.tx() as s:
        towns = catalog.key_sets(s)["towns.town_code"].values
    assert sorted(r[0] for r in data["rows"]) == sorted(
        towns
    )  # a public key set: every town, even empty ones
    ci = data["intervals"]["count(*)"]
    assert len(ci) == len(data["rows"]) and all(lo <= r[1] <= hi for r, (lo, hi) in zip(data["rows"], ci))
    assert "town_code" not in data["intervals"]
    assert data["epsilon_spent"] == 0.5 and data["cached"] is False
    assert data["budget_remaining"] == pytest.approx(2.0 - 0.5)  # 一般4级 default cap ε = 2
    assert {b["scope"] for b in data["budget"]} == {"project", "analyst"}


def test_non_member_is_refused_and_the_denial_is_audited(demo_lab):
    resp = ask(client_for(demo_lab, "researcher"), ELDERLY_SQL, project_id(demo_lab), 0.5)
    assert resp.status_code == 403 and resp.json()["error"]["details"]["reason"] == "project_member"
    steward = ask(client_for(demo_lab, "steward"), ELDERLY_SQL, project_id(demo_lab), 0.5)
    assert steward.status_code == 403  # oversight may read, never query
    with demo_lab.tx() as s:
        denied = recent(s, action_prefix="permission.denied")
        refused = recent(s, action_prefix="query.refused")
    assert {e.actor for e in denied} >= {"researcher", "steward"}
    assert {e.actor for e in refused} == {"researcher", "steward"}


def test_ungranted_dataset_is_refused(demo_lab):
    resp = ask(
        client_for(demo_lab, "developer"), "SELECT COUNT(*) FROM enterprises", project_id(demo_lab), 0.5
    )
    assert resp.status_code == 422 and resp.json()["error"]["details"]["table"] == "enterprises"


def test_core_data_is_refused_with_the_policy_reason(demo_lab):
    with demo_lab.tx() as s:
        catalog.set_grade(
            s,
            principal(demo_lab, "steward"),
            _dataset_id(demo_lab, "residents"),
            "core",
            "演示：升为核心数据",
        )
    resp = ask(client_for(demo_lab, "developer"), ELDERLY_SQL, project_id(demo_lab), 0.5)
    assert resp.status_code == 403, resp.text
    message = resp.json()["error"]["message"]
    assert "核心数据" in message and "差分隐私查询" in message
    budget_view = client_for(demo_lab, "developer").get(f"/api/projects/{project_id(demo_lab)}/budget").json()
    assert all(b["epsilon_spent"] == 0 for b in budget_view["budgets"])


def test_exhausted_budget_refuses_with_the_remaining_amounts(demo_lab):
    pid, client = project_id(demo_lab), client_for(demo_lab, "developer")
    steward = client_for(demo_lab, "steward")
    ds = _dataset_id(demo_lab, "residents")
    too_much = steward.put(f"/api/projects/{pid}/budgets/{ds}", json={"epsilon": 5.0})
    assert too_much.status_code == 422 and too_much.json()["error"]["details"]["cap"] == 2.0
    assert client.put(f"/api/projects/{pid}/budgets/{ds}", json={"epsilon": 0.1}).status_code == 403
    ok = steward.put(f"/api/projects/{pid}/budgets/{ds}", json={"epsilon": 1.0})
    assert ok.status_code == 200 and ok.json()["epsilon_limit"] == 1.0
    mine = steward.put(
        f"/api/projects/{pid}/budgets/{ds}", json={"epsilon": 0.6, "user_id": user_id(demo_lab, "developer")}
    )
    assert mine.status_code == 200 and mine.json()["scope"] == "analyst"
    assert ask(client, ELDERLY_SQL, pid, 0.5).status_code == 200
    resp = ask(client, "SELECT COUNT(*) FROM residents", pid, 0.5)
    assert resp.status_code == 429
    err = resp.json()["error"]
    assert "隐私预算不足" in err["message"] and "0.1" in err["message"]
    assert err["details"]["epsilon_remaining"] == pytest.approx(0.1)  # the analyst's own cap binds first
    assert err["details"]["project_epsilon_remaining"] == pytest.approx(0.5)
    assert ask(client, "SELECT COUNT(*) FROM residents", pid, 0.1).status_code == 200
    view = client.get(f"/api/projects/{pid}/budget").json()
    kinds = [e["kind"] for e in view["entries"]]
    assert kinds.count("limit") == 2 and kinds.count("charge") == 4  # two queries × (project + analyst)
    with demo_lab.tx() as s:
        assert s.query(BudgetEntry).count() == 6


def test_general_2_data_gets_dp_and_there_is_no_exact_mode(demo_lab):
    """Option (b) of issue 9: no interactive exact answers; 一般2级 data is answered with DP."""
    pid = project_id(demo_lab)
    with demo_lab.tx() as s:
        prj.grant_dataset(s, SYSTEM, pid, _dataset_id(demo_lab, "enterprises"))
    client = client_for(demo_lab, "developer")
    sql = "SELECT industry, COUNT(*), SUM(employees) FROM enterprises GROUP BY industry"
    for mode in ("sdc", "exact", ""):
        refused = ask(client, sql, pid, 0.5, mode=mode)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["details"]["field"] == "mode"
        assert "出域" in refused.json()["error"]["message"]
    resp = ask(client, sql, pid, 0.5)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["mode"] == "dp" and data["epsilon_spent"] == 0.5 and data["intervals"]
    tables = client.get(f"/api/projects/{pid}/query-tables").json()["items"]
    assert all("sdc_allowed" not in t for t in tables)
    with demo_lab.tx() as s:
        assert not [e for e in recent(s, action_prefix="query.run") if e.details["mode"] != "dp"]


def test_as_of_selects_a_dataset_version(demo_lab, tmp_path):
    pid, client = project_id(demo_lab), client_for(demo_lab, "developer")
    ds_id = _dataset_id(demo_lab, "residents")
    with demo_lab.tx() as s:
        v1 = demo_lab.ingestion.read_paths(catalog.get_by_name(s, "residents"))[0]
    table = pq.read_table(v1)
    half = table.slice(0, table.num_rows // 2)
    pq.write_table(half, tmp_path / "half.parquet")
    demo_lab.ingestion.ingest_file(SYSTEM, ds_id, tmp_path / "half.parquet", mode="replace")
    sql = "SELECT COUNT(*) FROM residents"
    now = ask(client, sql, pid, 0.5).json()
    old = ask(client, "SELECT COUNT(*) FROM residents AS OF 1", pid, 0.5).json()
    param = ask(client, sql, pid, 0.5, versions={"residents": 1}).json()
    assert abs(now["rows"][0][0] - half.num_rows) < 40
    assert abs(old["rows"][0][0] - table.num_rows) < 40
    assert param["cached"] is True and param["rows"] == old["rows"]  # same query, same version
    assert old["datasets"] == ["residents@v1"] and now["datasets"] == ["residents@v2"]
    missing = ask(client, "SELECT COUNT(*) FROM residents AS OF 9", pid, 0.5)
    assert missing.status_code == 404


def test_steward_sees_every_projects_history_and_every_query_is_audited(demo_lab):
    dev, researcher = client_for(demo_lab, "developer"), client_for(demo_lab, "researcher")
    pid, other = project_id(demo_lab), project_id(demo_lab, OTHER_PROJECT)
    asked = [
        ask(dev, ELDERLY_SQL, pid, 0.5),  # answered
        ask(dev, ELDERLY_SQL, pid, 0.5),  # cached
        ask(dev, "SELECT * FROM residents", pid, 0.5),  # refused
        ask(researcher, "SELECT crop, AVG(yield_kg_per_mu) FROM farmland_plots GROUP BY crop", other, 0.5),
    ]
    assert [r.status_code for r in asked] == [200, 200, 422, 200], [r.text for r in asked]
    steward = client_for(demo_lab, "steward")
    items = steward.get("/api/queries").json()["items"]
    assert {i["project_id"] for i in items} == {pid, other}
    assert [i["status"] for i in items if i["project_id"] == pid] == ["refused", "cached", "answered"]
    assert steward.get(f"/api/projects/{other}/queries").status_code == 200
    assert dev.get("/api/queries").status_code == 403
    assert dev.get(f"/api/projects/{other}/queries").status_code == 403
    mine = dev.get(f"/api/projects/{pid}/queries", params={"mine": "true"}).json()["items"]
    assert len(mine) == 3
    page = client_for(demo_lab, "steward").get("/query/history")
    assert page.status_code == 200 and "crop-yield" in page.text and "elderly-care-demand" in page.text
    with demo_lab.tx() as s:
        events = recent(s, limit=500)
    runs = [e for e in events if e.action in ("query.run", "query.refused", "query.failed")]
    assert len(runs) == 4
    answered = next(
        e for e in runs if e.action == "query.run" and not e.details["cached"] and e.actor == "developer"
    )
    assert answered.details["sql"] == ELDERLY_SQL and answered.details["epsilon_spent"] == 0.5
    assert "suppressed" in answered.details
    with demo_lab.tx() as s:
        charges = s.execute(select(BudgetEntry).where(BudgetEntry.kind == "charge")).scalars().all()
    assert len(charges) == 4  # two answered DP queries × (project + analyst); the cached one is free


def test_console_page_without_javascript(demo_lab):
    from tests.support import browser_login

    client = client_for(demo_lab, "developer")
    client.headers.pop("Authorization")
    csrf = browser_login(client, "developer", "Demo@2026")
    page = client.get("/query")
    assert page.status_code == 200 and 'name="csrf-token"' in page.text and "residents" in page.text
    resp = client.post(
        "/query",
        data={
            "sql": ELDERLY_SQL,
            "epsilon": "0.5",
            "mode": "dp",
            "project_id": str(project_id(demo_lab)),
            "csrf_token": csrf,
        },
    )
    assert resp.status_code == 200 and "result-table" in resp.text and "330729001" in resp.text
    bad = client.post(
        "/query",
        data={
            "sql": "SELECT * FROM residents",
            "epsilon": "0.5",
            "mode": "dp",
            "project_id": str(project_id(demo_lab)),
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert bad.status_code == 303 and bad.headers["X-Countylab-Outcome"] == "refused"


def test_a_query_over_two_private_datasets_charges_both(demo_lab, tmp_path):
    """Two private datasets whose units are the same entity (person:resident_id) may be joined on
    the unit; the query is charged on both datasets' project, analyst and yearly ledgers."""
    import pyarrow as pa

    from countylab.privacy.tables import unit_entity
    from countylab.storage.privacy_models import DatasetBudget

    pid = project_id(demo_lab)
    steward = principal(demo_lab, "steward")
    with demo_lab.tx() as s:
        residents = catalog.get_by_name(s, "residents")
    table = pq.read_table(demo_lab.ingestion.read_paths(residents)[0])
    ids_ = table.column("resident_id").to_pylist()
    with demo_lab.tx() as s:
        ds = catalog.create_dataset(
            s,
            SYSTEM,
            name="clinic_visits",
            title="门诊记录",
            privacy_unit="person",
            privacy_unit_column="resident_id",
            org_id=residents.org_id,
        )
        ds_id = ds.id
    visits = tmp_path / "visits.parquet"
    pq.write_table(pa.table({"resident_id": ids_[:300], "visits": [i % 5 for i in range(300)]}), visits)
    demo_lab.ingestion.ingest_file(SYSTEM, ds_id, visits)
    with demo_lab.tx() as s:
        catalog.set_column(s, steward, ds_id, "visits", lower=0, upper=20)
        catalog.set_column(s, steward, ds_id, "resident_id", sensitive=True)
        catalog.set_grade(s, steward, ds_id, "general_3", "test table")
        prj.grant_dataset(s, SYSTEM, pid, ds_id)
        cols = {c.name: c for c in catalog.columns(s, ds_id)}
        mine = {c.name: c for c in catalog.columns(s, residents.id)}["resident_id"]
        assert unit_entity(catalog.get_by_name(s, "clinic_visits"), cols["resident_id"]) == unit_entity(
            catalog.get_by_name(s, "residents"), mine
        )
    client = client_for(demo_lab, "developer")
    sql = (
        "SELECT r.town_code, SUM(v.visits) FROM residents r "
        "JOIN clinic_visits v ON r.resident_id = v.resident_id GROUP BY r.town_code"
    )
    resp = ask(client, sql, pid, 0.3)
    assert resp.status_code == 200, resp.text
    charged = {b["dataset"] for b in resp.json()["budget"] if b["epsilon_spent"] > 0}
    assert charged == {"residents", "clinic_visits"}
    rid = _dataset_id(demo_lab, "residents")
    with demo_lab.tx() as s:
        years = {y.dataset_id: y.epsilon_spent for y in s.execute(select(DatasetBudget)).scalars()}
        assert years[ds_id] == pytest.approx(0.3) and years[rid] == pytest.approx(0.3)
        entries = s.execute(select(BudgetEntry).where(BudgetEntry.kind == "charge")).scalars().all()
        assert {e.dataset_id for e in entries} == {ds_id, rid}
