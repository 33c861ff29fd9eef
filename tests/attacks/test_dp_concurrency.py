"""Concurrency: racing the budget, the dataset-wide ledger, the answer cache and the limits.

* 100 different queries at once against a budget for 10: exactly 10 answered, never overspent;
  the same with mixed ε, and across ten projects racing one dataset's yearly ledger;
* the same query sent 20 times at once: charged once, one noisy answer for all (no averaging);
* an analyst over the rate limit, or a project over its concurrency limit, gets 429 (with a
  Retry-After), is charged nothing, and the lab keeps answering.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from countylab.catalog import service as catalog
from countylab.catalog.grading import Grade
from countylab.identity.access import SYSTEM
from countylab.policy import dp_budget_limits
from countylab.privacy import budget
from countylab.privacy.limits import GatewayConfig
from tests.attacks.dp_lab import Attacker, AttackLab, module_lab, no_server_error

GRANTS = ["residents", "households", "towns"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Iterator[AttackLab]:
    for lab in module_lab(tmp_path_factory, demo_template):
        rows = [{"pid": f"P{i:03d}", "amount": i % 50} for i in range(40)]
        lab.add_dataset("vault", rows, unit="pid", grade="important", bounds={"amount": (0, 100)})
        lab.add_dataset("vault2", rows, unit="pid", grade="important", bounds={"amount": (0, 100)})
        yield lab


def limit_budget(world: AttackLab, attacker: Attacker, table: str, epsilon: float) -> None:
    """The steward gives the project a small budget on ``table``."""
    with world.lab.tx() as s:
        ds = catalog.get_by_name(s, table).id
        budget.set_limit(s, SYSTEM, attacker.project_id, ds, epsilon=epsilon, delta=None)


def in_parallel(fn, items, workers: int = 24) -> list:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def test_hundred_concurrent_queries_with_budget_for_ten(world):
    attacker = world.attacker(GRANTS)
    limit_budget(world, attacker, "residents", 1.0)
    responses = in_parallel(
        lambda i: attacker.ask(f"SELECT COUNT(*) FROM residents WHERE age > {i}", 0.1), range(100)
    )
    for r in responses:
        no_server_error(r)
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 10 and codes.count(429) == 90, sorted(set(codes))
    assert attacker.spent() == pytest.approx(1.0) and attacker.spent() <= 1.0 + 1e-9


def test_concurrent_queries_with_mixed_epsilon_never_overspend(world):
    attacker = world.attacker(GRANTS)
    limit_budget(world, attacker, "households", 1.0)
    eps = [0.1, 0.3, 0.05, 0.25] * 15
    responses = in_parallel(
        lambda i: attacker.ask(f"SELECT COUNT(*) FROM households WHERE household_size > {-i}", eps[i]),
        range(60),
    )
    answered = sum(eps[i] for i, r in enumerate(responses) if r.status_code == 200)
    assert all(r.status_code in (200, 429) for r in responses), {r.status_code for r in responses}
    assert answered <= 1.0 + 1e-9
    assert attacker.spent() == pytest.approx(answered)


def test_ten_projects_race_the_dataset_wide_yearly_ledger(world):
    """Colluding projects: each may spend ε = 1 on the 重要数据 vault, the year allows 8 in all."""
    limits = dp_budget_limits(Grade.important)
    first = world.attacker(["vault"], fresh_user=True)
    attackers = [first] + [world.attacker(["vault"], like=first) for _ in range(9)]
    responses = in_parallel(
        lambda i: attackers[i].ask(f"SELECT COUNT(*) FROM vault WHERE amount > {-i}", 1.0), range(10)
    )
    for r in responses:
        no_server_error(r)
    answered = sum(1 for r in responses if r.status_code == 200)
    assert answered <= limits.epsilon_per_year, (
        answered,
        [r.text[:120] for r in responses if r.status_code != 200],
    )
    assert all(r.status_code in (200, 429) for r in responses)
    assert sum(a.spent() for a in attackers) <= limits.epsilon_per_year + 1e-9


@pytest.mark.parametrize(
    "sql",
    ["SELECT COUNT(*) FROM residents", "SELECT town_code, AVG(income) FROM residents GROUP BY town_code"],
)
def test_concurrent_identical_queries_are_charged_once(world, sql):
    attacker = world.attacker(GRANTS)
    responses = in_parallel(lambda _: attacker.ask(sql, 0.5), range(20), workers=20)
    answered = [r for r in responses if r.status_code == 200]
    for r in responses:
        no_server_error(r)
        assert r.status_code in (200, 429), r.text  # 429 only as "identical query running, retry"
    assert answered, [r.text[:200] for r in responses]
    assert len({repr(r.json()["rows"]) for r in answered}) == 1, "two different noisy answers to one question"
    assert sum(1 for r in answered if not r.json()["cached"]) <= 1
    assert attacker.spent() == pytest.approx(0.5)


# -- rate and concurrency limits ------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Iterator[AttackLab]:
    config = GatewayConfig(project_concurrency=1, rate_per_minute=5, wall_clock_s=30.0)
    yield from module_lab(tmp_path_factory, demo_template, config=config)


def test_rate_limit_returns_429_with_retry_after_and_no_charge(limited):
    attacker = limited.attacker(GRANTS, fresh_user=True)
    responses = [attacker.ask(f"SELECT COUNT(*) FROM residents WHERE age > {i}", 0.05) for i in range(12)]
    for r in responses:
        no_server_error(r)
    codes = [r.status_code for r in responses]
    assert 429 in codes and codes.count(200) <= 5, codes
    limited_resp = next(r for r in responses if r.status_code == 429)
    retry = limited_resp.headers.get("Retry-After") or limited_resp.json()["error"]["details"].get(
        "retry_after_s"
    )
    assert retry is not None and float(retry) > 0, limited_resp.text
    assert attacker.spent() == pytest.approx(0.05 * codes.count(200))


def test_a_burst_is_limited_not_crashed(limited):
    """Fifty requests at once from one analyst: some answered, the rest 429, no 5xx, no hang."""
    attacker = limited.attacker(GRANTS, fresh_user=True)
    responses = in_parallel(
        lambda i: attacker.ask(f"SELECT COUNT(*) FROM towns WHERE population > {i}", 0.05), range(50)
    )
    for r in responses:
        no_server_error(r)
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429}, codes
    assert codes.count(429) >= 45, codes
    assert attacker.spent() == pytest.approx(0.05 * codes.count(200))


def test_another_analyst_is_not_starved_by_a_flooding_one(limited):
    flooder = limited.attacker(GRANTS, fresh_user=True)
    for i in range(10):
        flooder.ask(f"SELECT COUNT(*) FROM residents WHERE age > {i}", 0.05)
    honest = limited.attacker(GRANTS, fresh_user=True)
    resp = honest.ask("SELECT COUNT(*) FROM residents", 0.05)
    assert resp.status_code == 200, resp.text


def test_the_daily_cap_holds_under_concurrency(world):
    """130 cheapest queries at once over seven projects of one analyst: at most the daily cap."""
    limits = dp_budget_limits(Grade.important)
    first = world.attacker(["vault2"], fresh_user=True)
    projects = [first] + [world.attacker(["vault2"], like=first) for _ in range(6)]
    floor, n = limits.min_epsilon, limits.queries_per_day + 30  # budgets and the year allow them all
    responses = in_parallel(
        lambda i: projects[i % 7].ask(f"SELECT COUNT(*) FROM vault2 WHERE amount > {-1 - i}", floor), range(n)
    )
    for r in responses:
        no_server_error(r)
    answered = sum(1 for r in responses if r.status_code == 200)
    assert 0.9 * limits.queries_per_day <= answered <= limits.queries_per_day, answered
    assert all(r.status_code in (200, 429) for r in responses)
