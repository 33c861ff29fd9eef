"""Every parameter is validated before anything runs: a clear bilingual 4xx, never a 5xx, no charge.

Covers ε (type, finite, floor and cap of the grade), δ (range, the grade's cap, the default that
is a small fraction of the cap, the confirmation step), ids within int64 on every route of the
gateway, SQL length, the retired exact mode and the per-analyst daily query cap.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from countylab.errors import QuotaExceeded
from countylab.privacy import ledgers
from countylab.storage.models import utcnow
from countylab.storage.privacy_models import BudgetEntry, DailyQueries, QueryRun
from tests.privacy_gateway.conftest import ELDERLY_SQL, ask, client_for, project_id, user_id

BIG = 2**70


def _charges(lab) -> int:
    with lab.tx() as s:
        return len(s.execute(select(BudgetEntry).where(BudgetEntry.kind == "charge")).scalars().all())


def _raw(client, body: str):
    return client.post("/api/query", content=body, headers={"Content-Type": "application/json"})


BAD_EPSILON = {
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "negative": "-0.5",
    "zero": "0",
    "below the floor": "1e-9",
    "just below the floor": "0.0199",
    "above the grade's budget": "2.5",
    "huge": "1e308",
    "string": '"0.5"',
    "boolean": "true",
}


@pytest.mark.parametrize("name", list(BAD_EPSILON))
def test_bad_epsilon_is_a_4xx_and_charges_nothing(demo_lab, name):
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    body = f'{{"sql": {json.dumps(ELDERLY_SQL)}, "project_id": {pid}, "epsilon": {BAD_EPSILON[name]}}}'
    resp = _raw(client, body)
    assert 400 <= resp.status_code < 500, (name, resp.status_code, resp.text)
    assert _charges(demo_lab) == 0


def test_the_floor_names_the_grade_and_both_languages(demo_lab):
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    resp = ask(client, ELDERLY_SQL, pid, 1e-9)
    err = resp.json()["error"]
    assert resp.status_code == 422 and err["details"]["reason"] == "epsilon_floor"
    assert err["details"]["min_epsilon"] == 0.02 and "residents" in err["message"]
    en = client.post(
        "/api/query",
        json={"sql": ELDERLY_SQL, "project_id": pid, "epsilon": 1e-9},
        headers={"Accept-Language": "en"},
    )
    assert en.status_code == 422
    assert ask(client, ELDERLY_SQL, pid, 0.02).status_code == 200  # exactly the floor is fine


@pytest.mark.parametrize("delta", ["NaN", "Infinity", "0", "-1e-9", "0.5", "1", "1e-6", '"x"'])
def test_bad_delta_is_a_4xx(demo_lab, delta):
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    sql = "SELECT age, COUNT(*) FROM residents GROUP BY age"
    body = f'{{"sql": {json.dumps(sql)}, "project_id": {pid}, "epsilon": 0.5, "delta": {delta}}}'
    resp = _raw(client, body)
    assert 400 <= resp.status_code < 500, (delta, resp.text)  # 1e-6 > the 一般4级 cap of 1e-7
    assert _charges(demo_lab) == 0


def test_default_delta_is_a_small_fraction_of_the_grade_cap_and_is_confirmed_first(demo_lab):
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    sql = "SELECT age, COUNT(*) FROM residents GROUP BY age"  # age has no public key set
    ask_first = ask(client, sql, pid, 0.5, confirm_delta=False)
    assert ask_first.status_code == 409, ask_first.text
    details = ask_first.json()["error"]["details"]
    assert details["reason"] == "confirm_delta" and details["delta"] == pytest.approx(1e-7 * 0.02)
    assert "δ" in ask_first.json()["error"]["message"] and _charges(demo_lab) == 0
    resp = ask(client, sql, pid, 0.5, confirm_delta=True)
    assert resp.status_code == 200, resp.text
    assert resp.json()["delta_spent"] == pytest.approx(2e-9)  # 2% of the period's δ, not all of it
    project = next(b for b in resp.json()["budget"] if b["scope"] == "project")
    assert project["delta_remaining"] == pytest.approx(1e-7 - 2e-9)
    # the answer is cached now: repeating it is free, so it is not asked about again
    again = ask(client, sql, pid, 0.5, confirm_delta=False)
    assert again.status_code == 200 and again.json()["cached"] is True
    # a query with public group keys spends no δ and needs no confirmation
    assert ask(client, ELDERLY_SQL, pid, 0.5, confirm_delta=False).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"project_id": BIG},
        {"project_id": -1},
        {"project_id": 2**63},
        {"versions": {"residents": BIG}},
        {"versions": {"residents": -3}},
        {"sql": "SELECT COUNT(*) FROM residents WHERE age > 1" + " " * 20_000},
        {"sql": ""},
        {"mode": "sdc"},
        {"epsilon": None},
    ],
)
def test_bad_body_fields_are_4xx(demo_lab, body):
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    full = {"sql": ELDERLY_SQL, "project_id": pid, "epsilon": 0.5, **body}
    resp = client.post("/api/query", json=full)
    assert 400 <= resp.status_code < 500, (body, resp.text)
    assert _charges(demo_lab) == 0


@pytest.mark.parametrize(
    ("method", "path", "json_body"),
    [
        ("GET", "/api/projects/{big}/query-tables", None),
        ("GET", "/api/projects/{big}/budget", None),
        ("GET", "/api/projects/{big}/queries", None),
        ("GET", "/api/projects/{big}/budget-topups", None),
        ("PUT", "/api/projects/{big}/budgets/1", {"epsilon": 1.0}),
        ("PUT", "/api/projects/1/budgets/{big}", {"epsilon": 1.0}),
        ("PUT", "/api/projects/1/budgets/1", {"epsilon": 1.0, "user_id": BIG}),
        ("POST", "/api/projects/{big}/budget-topups", {"dataset_id": 1, "epsilon": 0.1, "reason": "x"}),
        ("POST", "/api/projects/1/budget-topups", {"dataset_id": BIG, "epsilon": 0.1, "reason": "x"}),
        ("POST", "/api/budget-topups/{big}/decision", {"approve": True}),
        ("GET", "/query?project_id={big}", None),
    ],
)
def test_ids_beyond_int64_are_4xx_on_every_route(demo_lab, method, path, json_body):
    for who in ("developer", "steward"):
        client = client_for(demo_lab, who)
        resp = client.request(method, path.format(big=BIG), json=json_body)
        assert 400 <= resp.status_code < 500, (who, method, path, resp.status_code, resp.text)


@pytest.mark.parametrize("epsilon", ["NaN", "inf", "-1", "abc", "1e-9"])
def test_console_form_with_bad_epsilon_redirects_with_a_message(demo_lab, epsilon):
    from tests.support import browser_login

    client = client_for(demo_lab, "developer")
    client.headers.pop("Authorization")
    csrf = browser_login(client, "developer", "Demo@2026")
    resp = client.post(
        "/query",
        data={
            "sql": ELDERLY_SQL,
            "epsilon": epsilon,
            "project_id": str(project_id(demo_lab)),
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["X-Countylab-Outcome"] == "refused"
    big = client.post(
        "/query",
        data={"sql": ELDERLY_SQL, "epsilon": "0.5", "project_id": str(BIG), "csrf_token": csrf},
        follow_redirects=False,
    )
    assert 300 <= big.status_code < 500
    assert _charges(demo_lab) == 0


def test_daily_query_cap_per_analyst(demo_lab):
    """The 一般4级 cap (200 a day) is counted atomically; cached answers do not count."""
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    uid = user_id(demo_lab, "developer")
    assert ask(client, ELDERLY_SQL, pid, 0.1).status_code == 200
    with demo_lab.tx() as s:
        row = s.get(DailyQueries, (uid, utcnow().date().isoformat()))
        assert row is not None and row.queries == 1
        row.queries = 199
    assert ask(client, ELDERLY_SQL, pid, 0.1).status_code == 200  # identical: cached, not counted
    assert ask(client, "SELECT COUNT(*) FROM residents", pid, 0.1).status_code == 200  # the 200th
    over = ask(client, "SELECT COUNT(*) FROM residents WHERE age > 3", pid, 0.1)
    assert over.status_code == 429 and over.json()["error"]["details"]["reason"] == "daily_cap"
    with demo_lab.tx() as s:
        assert s.get(DailyQueries, (uid, utcnow().date().isoformat())).queries == 200
        refused = s.execute(select(QueryRun).where(QueryRun.status == "refused")).scalars().all()
        assert len(refused) == 1
    assert _charges(demo_lab) == 4  # two charged queries × (project + analyst)


def test_count_query_never_passes_the_cap(demo_lab):
    now = utcnow()
    with demo_lab.tx() as s:
        for _ in range(3):
            ledgers.count_query(s, 42, 3, now)
    with demo_lab.tx() as s, pytest.raises(QuotaExceeded):
        ledgers.count_query(s, 42, 3, now)
    with demo_lab.tx() as s:
        assert ledgers.queries_today(s, 42) == 3
