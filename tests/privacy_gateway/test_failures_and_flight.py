"""After a charge: one failure answer for every failure; before it: preparation charges nothing;
identical concurrent queries are charged once (single flight), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from countylab.audit.log import recent
from countylab.errors import TooLarge
from countylab.privacy.limits import GatewayConfig
from countylab.privacy.sandboxed_duckdb import QueryTimeout
from countylab.storage.privacy_models import BudgetEntry, CachedAnswer, QueryRun
from tests.privacy_gateway.conftest import ELDERLY_SQL, ROOMY, ask, client_for, fast_gateway, project_id
from tests.privacy_gateway.fakes import FailingRunner, SlowRunner, UnpreparableRunner

FAILURES = [
    RuntimeError("boom"),
    ZeroDivisionError("x"),
    MemoryError(),
    TooLarge("太大", "too large", rows=12345),
    QueryTimeout("超时", "timeout"),
    KeyError("resident 330729001"),
]


def _charges(lab) -> list[BudgetEntry]:
    with lab.tx() as s:
        return list(s.execute(select(BudgetEntry).where(BudgetEntry.kind == "charge")).scalars())


def test_every_failure_after_a_charge_gets_the_same_answer_at_the_wall_clock(demo_lab):
    pid, client = project_id(demo_lab), client_for(demo_lab, "developer")
    bodies = set()
    for i, error in enumerate(FAILURES):
        fast_gateway(demo_lab, runner=FailingRunner(error), config=GatewayConfig(wall_clock_s=0.4))
        t0 = time.monotonic()
        resp = ask(client, f"SELECT COUNT(*) FROM residents WHERE age > {i}", pid, 0.1)
        elapsed = time.monotonic() - t0
        assert resp.status_code == 400, resp.text
        assert elapsed >= 0.4  # answered when the wall clock ends, whatever failed and when
        bodies.add(resp.text)
    assert len(bodies) == 1  # status, code, message and details never depend on what failed
    (body,) = bodies
    assert "query_failed" in body and "12345" not in body and "330729001" not in body
    with demo_lab.tx() as s:
        runs = s.execute(select(QueryRun).order_by(QueryRun.id)).scalars().all()
        assert [r.status for r in runs] == ["failed"] * len(FAILURES)
        assert all(r.epsilon_spent == 0.1 for r in runs)  # the charge stays
        failed = recent(s, action_prefix="query.failed", limit=50)
        assert len(failed) == len(FAILURES)
        assert {e.details["code"] for e in failed} >= {"error", "too_large"}  # the steward sees why
        assert s.execute(select(CachedAnswer)).scalars().all() == []  # no claim is left behind
    assert len(_charges(demo_lab)) == 2 * len(FAILURES)


def test_a_failed_query_can_be_asked_again(demo_lab):
    pid, client = project_id(demo_lab), client_for(demo_lab, "developer")
    fast_gateway(demo_lab, runner=FailingRunner(RuntimeError()), config=GatewayConfig(wall_clock_s=0.1))
    assert ask(client, ELDERLY_SQL, pid, 0.1).status_code == 400
    fast_gateway(demo_lab)
    again = ask(client, ELDERLY_SQL, pid, 0.1)
    assert again.status_code == 200 and again.json()["cached"] is False


def test_a_preparation_failure_charges_nothing(demo_lab):
    pid, client = project_id(demo_lab), client_for(demo_lab, "developer")
    fast_gateway(demo_lab, runner=UnpreparableRunner(0.0))
    resp = ask(client, ELDERLY_SQL, pid, 0.5)
    assert resp.status_code == 400 and resp.json()["error"]["details"]["reason"] == "prepare_failed"
    assert _charges(demo_lab) == []
    with demo_lab.tx() as s:
        assert [r.status for r in s.execute(select(QueryRun)).scalars()] == ["refused"]
        assert recent(s, action_prefix="query.refused")


def _single_flight(lab) -> None:
    runner = SlowRunner(0.6)
    fast_gateway(lab, runner=runner, config=ROOMY)
    pid, client = project_id(lab), client_for(lab, "developer")
    with ThreadPoolExecutor(max_workers=8) as pool:
        resps = list(pool.map(lambda _: ask(client, ELDERLY_SQL, pid, 0.5), range(8)))
    assert [r.status_code for r in resps] == [200] * 8, [r.text for r in resps]
    datas = [r.json() for r in resps]
    assert sum(not d["cached"] for d in datas) == 1  # one ran and was charged
    assert len({str(d["rows"]) for d in datas}) == 1  # everybody got that same answer
    assert runner.runs == 1
    charges = _charges(lab)
    assert len(charges) == 2 and {c.epsilon for c in charges} == {0.5}  # project + analyst, once
    with lab.tx() as s:
        statuses = sorted(r.status for r in s.execute(select(QueryRun)).scalars())
    assert statuses == ["answered"] + ["cached"] * 7


def test_identical_concurrent_queries_are_charged_once(any_demo_lab):
    _single_flight(any_demo_lab)


def test_a_waiter_takes_over_when_the_first_query_fails(demo_lab):
    """The failing query's claim is released; a waiting identical query runs (and pays) itself."""
    pid, client = project_id(demo_lab), client_for(demo_lab, "developer")
    fast_gateway(demo_lab, runner=FailingRunner(RuntimeError()), config=GatewayConfig(wall_clock_s=0.3))
    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = sorted(
            r.status_code for r in pool.map(lambda _: ask(client, ELDERLY_SQL, pid, 0.5), range(2))
        )
    assert codes == [400, 400]
    assert len(_charges(demo_lab)) == 4  # each failure was a run of its own


@pytest.mark.parametrize("stale", [True, False])
def test_a_stale_claim_is_released(demo_lab, stale):
    """A claim left by a crashed server does not block the fingerprint forever."""
    from datetime import timedelta

    from countylab.storage.models import utcnow

    pid, client = project_id(demo_lab), client_for(demo_lab, "developer")
    gateway = fast_gateway(demo_lab, config=GatewayConfig(wall_clock_s=0.5))
    plan_resp = ask(client, ELDERLY_SQL, pid, 0.5)
    assert plan_resp.status_code == 200
    with demo_lab.tx() as s:
        row = s.execute(select(CachedAnswer)).scalar_one()
        row.answer = {"pending": True}
        row.created_at = utcnow() - timedelta(seconds=3600 if stale else 0)
    resp = ask(client, ELDERLY_SQL, pid, 0.5)
    if stale:
        assert resp.status_code == 200 and resp.json()["cached"] is False
    else:  # a live claim: the identical query waits, then is told to retry (never charged twice)
        assert resp.status_code == 429 and resp.json()["error"]["details"]["reason"] == "identical_running"
        assert resp.headers["Retry-After"] == "2"
    gateway.close()


class BrokenPaths:
    """A ``PathSource`` with a bug: an unexpected exception before anything is charged."""

    def read_paths(self, ds, version=None):
        raise RuntimeError("bug")


def test_an_unexpected_error_before_the_charge_is_a_4xx_refusal(demo_lab):
    gateway = fast_gateway(demo_lab)
    gateway.paths = BrokenPaths()
    resp = ask(client_for(demo_lab, "developer"), ELDERLY_SQL, project_id(demo_lab), 0.5)
    assert resp.status_code == 400 and resp.json()["error"]["details"]["reason"] == "error"
    assert "bug" not in resp.text and _charges(demo_lab) == []
    with demo_lab.tx() as s:
        assert [r.status for r in s.execute(select(QueryRun)).scalars()] == ["refused"]
