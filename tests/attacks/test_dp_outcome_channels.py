"""Outcome channels: a query's visible outcome must not depend on the rows.

The attack: wrap an expression that can fail at run time in ``CASE WHEN <fact about one
person> THEN <failing expression> ELSE TRUE END``.  If the engine raises on the rows where the
fact holds, "error" versus "answer" is an exact yes/no answer about that person, whatever the
noise.  Each case asks the *same* question twice, once with a fact that is true for the target
resident and once with one that is false, and asserts that the attacker sees the same outcome
(status, error code and message, columns, which cells, what was charged).  The failing
expressions cover every family: casts of text to numbers and dates, integer overflow, division
and modulo by zero, NaN/∞ conversions, bad LIKE escapes, bad date-part specifiers; placed in
WHERE, in a GROUP BY key, behind a join and on other tables.  Group caps, the watchdog and the
ε floor / daily cap (many near-free questions) are the same class.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from countylab.catalog.grading import Grade
from countylab.policy import dp_budget_limits
from countylab.privacy.spec import SandboxLimits
from tests.attacks.dp_lab import AttackLab, module_lab, no_server_error, outcome

RESIDENT_TABLES = ["residents", "households", "elderly_care_records", "towns", "villages"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Iterator[AttackLab]:
    yield from module_lab(tmp_path_factory, demo_template)


@pytest.fixture(scope="module")
def target(world: AttackLab) -> dict[str, Any]:
    """One real resident the attacker knows by ID (as a neighbour or an employer would)."""
    rid, age, income, town, idn = world.exact(
        "SELECT resident_id, age, income, town_code, id_number FROM {r} ORDER BY resident_id LIMIT 1",
        r="residents",
    )[0]
    return {"rid": rid, "age": age, "income": income, "town": town, "id": idn}


# failing expressions (each raises in plain DuckDB on the rows where it is evaluated)
FAILING = {
    "cast text to integer": "CAST(name AS INTEGER) > 0",
    "cast text to bigint": "CAST(address AS BIGINT) > 0",
    "cast text to double": "CAST(name AS DOUBLE) > 0",
    "cast text to boolean": "CAST(name AS BOOLEAN)",
    "cast text to date": "CAST(address AS DATE) IS NOT NULL",
    "cast text to timestamp": "CAST(name AS TIMESTAMP) IS NOT NULL",
    "cast id check digit": "CAST(substring(id_number, 18, 1) AS INTEGER) >= 0",
    "cast id number to int32 overflow": "CAST(substring(id_number, 1, 12) AS INTEGER) > 0",
    "cast to tinyint out of range": "CAST(income AS TINYINT) > 0",
    "cast to decimal out of range": "CAST(income AS DECIMAL(3, 0)) > 0",
    "bigint multiplication overflow": "income * 9223372036854775807 > 0",
    "bigint addition overflow": "income + 9223372036854775807 > 0",
    "abs of min bigint": "abs(age - age - 9223372036854775807 - 1) > 0",
    "integer division by zero": "income // (age - age) > 0",
    "modulo by zero": "income % (age - age) > 0",
    "double modulo by zero": "CAST(income AS DOUBLE) % 0.0 > 0",
    "NaN to integer": "CAST(sqrt(age - 1000) AS INTEGER) > 0",
    "-inf to bigint": "CAST(ln(age - age) AS BIGINT) < 0",
    "inf to integer": "CAST(exp(income) AS INTEGER) > 0",
    "double to float overflow": "CAST(income * 1e300 AS FLOAT) > 0",
    "double to bigint overflow": "CAST(income * 1e20 AS BIGINT) > 0",
    "LIKE with a bad escape": "name LIKE 'a%' ESCAPE 'ab'",
    "ILIKE with a bad escape": "name ILIKE 'a%' ESCAPE 'xy'",
    "date_trunc with a data-chosen part": "date_trunc(name, birth_date) IS NOT NULL",
    "coalesce does not catch": "coalesce(CAST(name AS INTEGER), 0) > 0",
    "regexp_matches with a bad pattern": "regexp_matches(name, '[')",
    "SIMILAR TO with a bad pattern": "name SIMILAR TO '('",
    "invalid constant date": "CAST('2023-02-30' AS DATE) IS NOT NULL",
    "month of a text timestamp": "month(CAST(address AS TIMESTAMP)) > 0",
    "extract from a text date": "extract(year FROM CAST(name AS DATE)) > 0",
    "substring with an overflowing length": "length(substring(name, 1, income + 9223372036854775807)) > 0",
    "least with a failing cast": "least(age, CAST(name AS INTEGER)) > 0",
}


def _facts(t: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """(true, false) versions of one fact about the target."""
    rid = f"resident_id = '{t['rid']}'"
    return {
        "age": (f"{rid} AND age = {t['age']}", f"{rid} AND age = {t['age'] + 1}"),
        "income": (f"{rid} AND income >= {t['income']}", f"{rid} AND income > {t['income']}"),
        "town": (f"{rid} AND town_code = '{t['town']}'", f"{rid} AND town_code <> '{t['town']}'"),
        "id prefix": (
            f"id_number LIKE '{t['id'][:14]}%'",
            f"id_number LIKE '{t['id'][:14]}%' AND age > 200",
        ),
        "exists": (rid, f"resident_id = '{t['rid']}x'"),
    }


def assert_same_outcome(first: Any, second: Any) -> None:
    for resp in (first, second):
        no_server_error(resp)
        # a budget or rate refusal would make the comparison vacuous: the attacker has budget
        assert resp.status_code != 429, resp.text
    assert outcome(first) == outcome(second), (first.status_code, first.text[:300], second.text[:300])


@pytest.mark.parametrize("name", sorted(FAILING))
def test_failing_expression_behind_a_fact_is_not_an_oracle(world, target, name):
    attacker = world.attacker(RESIDENT_TABLES)
    true_fact, false_fact = _facts(target)["age"]
    sql = "SELECT COUNT(*) FROM residents WHERE CASE WHEN {} THEN " + FAILING[name] + " ELSE TRUE END"
    assert_same_outcome(attacker.ask(sql.format(true_fact)), attacker.ask(sql.format(false_fact)))


@pytest.mark.parametrize("fact", ["income", "town", "id prefix", "exists"])
def test_every_kind_of_fact_gets_the_same_outcome(world, target, fact):
    attacker = world.attacker(RESIDENT_TABLES)
    true_fact, false_fact = _facts(target)[fact]
    sql = "SELECT COUNT(*) FROM residents WHERE CASE WHEN {} THEN CAST(name AS INTEGER) > 0 ELSE TRUE END"
    assert_same_outcome(attacker.ask(sql.format(true_fact)), attacker.ask(sql.format(false_fact)))


PLACES = {
    "group key": (
        "SELECT CASE WHEN {} THEN CAST(name AS INTEGER) ELSE 0 END AS g, COUNT(*) FROM residents GROUP BY 1"
    ),
    "group key with a public key set": (
        "SELECT town_code, COUNT(*) FROM residents "
        "WHERE CASE WHEN {} THEN CAST(address AS DATE) IS NULL ELSE TRUE END GROUP BY town_code"
    ),
    "behind a public join": (
        "SELECT COUNT(*) FROM residents r JOIN towns t ON r.town_code = t.town_code "
        "WHERE CASE WHEN {} THEN CAST(t.town_name AS INTEGER) > 0 ELSE TRUE END"
    ),
    "inside a sum's filter": (
        "SELECT SUM(income) FROM residents WHERE CASE WHEN {} THEN income // (age - age) > 0 ELSE TRUE END"
    ),
    "inside a quantile's filter": (
        "SELECT MEDIAN(income) FROM residents WHERE CASE WHEN {} THEN CAST(name AS DOUBLE) > 0 ELSE TRUE END"
    ),
    "IF instead of CASE": "SELECT COUNT(*) FROM residents WHERE IF({}, CAST(name AS INTEGER) > 0, TRUE)",
    "nested CASE": (
        "SELECT COUNT(*) FROM residents WHERE CASE WHEN age > -1 THEN "
        "CASE WHEN {} THEN CAST(name AS INTEGER) > 0 ELSE TRUE END ELSE FALSE END"
    ),
}


@pytest.mark.parametrize("place", sorted(PLACES))
def test_failing_expression_anywhere_in_the_query(world, target, place):
    attacker = world.attacker(RESIDENT_TABLES)
    true_fact, false_fact = _facts(target)["age"]
    if place == "behind a public join":
        true_fact, false_fact = (f.replace("resident_id", "r.resident_id") for f in (true_fact, false_fact))
        true_fact, false_fact = (f.replace(" age", " r.age") for f in (true_fact, false_fact))
    sql = PLACES[place]
    assert_same_outcome(attacker.ask(sql.format(true_fact)), attacker.ask(sql.format(false_fact)))


def test_oracle_on_another_private_table(world):
    """A household (一般3级) and a care record (joined to its resident) are probed the same way."""
    hid, size = world.exact(
        "SELECT household_id, household_size FROM {h} ORDER BY 1 LIMIT 1", h="households"
    )[0]
    attacker = world.attacker(RESIDENT_TABLES)
    sql = (
        "SELECT COUNT(*) FROM households WHERE CASE WHEN household_id = '{}' AND household_size = {} "
        "THEN CAST(address AS INTEGER) > 0 ELSE TRUE END"
    )
    assert_same_outcome(attacker.ask(sql.format(hid, size)), attacker.ask(sql.format(hid, size + 1)))


def test_oracle_through_a_join_of_two_private_tables_on_their_unit(world):
    rid, minutes = world.exact(
        "SELECT resident_id, max(duration_min) FROM {e} GROUP BY 1 ORDER BY 1 LIMIT 1",
        e="elderly_care_records",
    )[0]
    attacker = world.attacker(RESIDENT_TABLES)
    sql = (
        "SELECT COUNT(*) FROM elderly_care_records e JOIN residents r ON e.resident_id = r.resident_id "
        "WHERE CASE WHEN e.resident_id = '{}' AND e.duration_min = {} "
        "THEN CAST(r.name AS INTEGER) > 0 ELSE TRUE END"
    )
    assert_same_outcome(attacker.ask(sql.format(rid, minutes)), attacker.ask(sql.format(rid, -1)))


# -- group caps and the watchdog ------------------------------------------------------------------


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Iterator[AttackLab]:
    """A lab whose result and group caps are small (30), so the demo county can exceed them."""
    limits = SandboxLimits(max_result_rows=30, max_internal_groups=30)
    yield from module_lab(tmp_path_factory, demo_template, limits=limits)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT income, COUNT(*) FROM residents WHERE age > {} GROUP BY income",
        "SELECT age, COUNT(*) FROM residents WHERE income >= {} GROUP BY age",
        "SELECT village_code, COUNT(*) FROM residents WHERE age > {} GROUP BY village_code",
        "SELECT town_code, COUNT(*) FROM residents WHERE age > {} GROUP BY town_code",
    ],
    ids=["many-income-groups", "many-age-groups", "key-set-larger-than-cap", "key-set-within-cap"],
)
def test_group_cap_comes_from_metadata_not_from_the_rows(capped, sql):
    """Few groups in the data (threshold 1000) versus many (threshold -1): the same outcome kind."""
    attacker = capped.attacker(RESIDENT_TABLES)
    few, many = attacker.ask(sql.format(1000)), attacker.ask(sql.format(-1))
    for resp in (few, many):
        no_server_error(resp)
        assert resp.status_code != 429, resp.text
    a, b = outcome(few), outcome(many)
    assert (a["status"], a.get("code"), a.get("message")) == (b["status"], b.get("code"), b.get("message"))
    if few.status_code == 200:  # notes (caps, thresholds, dropped groups) must not count the rows
        assert few.json()["notes"] == many.json()["notes"], (few.json()["notes"], many.json()["notes"])


WALL_CLOCK_S = 0.4


class FailingRunner:
    """A fake query runner that fails the way the real one can: each ``run`` raises the next error.

    The failures a charged query can meet (the watchdog, the memory limit, a result cap, a
    crashed worker, an engine error) all depend on the data, so they must all read alike.
    """

    def __init__(self, inner: Any, errors: list[BaseException]) -> None:
        self.inner, self.errors, self.calls, self.failing = inner, errors, 0, True

    def prepare(self, specs: Any) -> None:
        self.inner.prepare(specs)

    def run(self, specs: Any, sqls: Any, *, bounded: bool = True) -> Any:
        self.calls += 1
        if self.failing:
            raise self.errors[(self.calls - 1) % len(self.errors)]
        return self.inner.run(specs, sqls, bounded=bounded)

    def close(self) -> None:
        self.inner.close()


def _engine_failures() -> list[BaseException]:
    import duckdb

    from countylab.errors import TooLarge, UserError
    from countylab.privacy.sandboxed_duckdb import QueryTimeout

    return [
        QueryTimeout("查询超时，已中止", "query ran past the time limit and was stopped", timeout_s=30.0),
        duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 2.0 GiB"),
        TooLarge("结果行数超过上限", "result has too many rows", max_rows=10_000),
        UserError("查询执行失败", "query failed", reason="ConversionException"),
        duckdb.ConversionException("Conversion Error: Could not convert string '郭永' to INT32"),
        BrokenPipeError("the query worker died"),
    ]


@pytest.fixture(scope="module")
def stalled(
    tmp_path_factory: pytest.TempPathFactory, demo_template: Path
) -> Iterator[tuple[AttackLab, FailingRunner]]:
    """A lab whose query runner fails in every way a real one can, once each, then answers."""
    from countylab.privacy.limits import GatewayConfig
    from countylab.privacy.worker import InProcessRunner

    runner = FailingRunner(InProcessRunner(SandboxLimits()), _engine_failures())
    config = GatewayConfig(project_concurrency=256, rate_per_minute=100_000, wall_clock_s=WALL_CLOCK_S)
    for world in module_lab(tmp_path_factory, demo_template, runner=runner, config=config):
        yield world, runner


def test_a_failure_after_the_charge_is_one_uniform_outcome(stalled):
    """Timeout, memory, result cap, engine errors, a dead worker: one answer, no cause, charged."""
    world, runner = stalled
    attacker = world.attacker(RESIDENT_TABLES)
    kinds = len(_engine_failures())
    failures = []
    for i in range(kinds):
        started = time.monotonic()
        resp = attacker.ask(f"SELECT COUNT(*) FROM residents WHERE age > {i}")
        no_server_error(resp)
        failures.append(resp)
        # a failure comes back when the request's wall clock ends, however early it happened
        assert time.monotonic() - started >= WALL_CLOCK_S, (i, resp.text)
    assert all(r.status_code not in (200, 429) for r in failures), [r.text for r in failures]
    assert len({repr(outcome(r)) for r in failures}) == 1, [r.text for r in failures]
    text = failures[0].text.lower()
    for word in ("timeout", "time limit", "memory", "too many", "convert", "worker", "exception", "郭永"):
        assert word not in text, failures[0].text
    # the charge stands (a failure is not a free question) and the next query is answered
    assert attacker.spent() == pytest.approx(0.05 * kinds)
    runner.failing = False
    assert attacker.ask("SELECT COUNT(*) FROM residents WHERE age > 100").status_code == 200
    from tests.support import audit_actions

    assert sum(1 for a, _, _ in audit_actions(world.lab) if a == "query.failed") >= kinds


# -- the ε floor and the daily query cap ------------------------------------------------------------


@pytest.mark.parametrize("epsilon", [1e-9, 1e-6, 1e-3, 0.005])
@pytest.mark.parametrize("table", ["residents", "households", "towns"])
def test_epsilon_below_the_grade_floor_is_refused_without_a_charge(world, table, epsilon):
    attacker = world.attacker(RESIDENT_TABLES)
    resp = attacker.ask(f"SELECT COUNT(*) FROM {table}", epsilon)
    no_server_error(resp)
    assert resp.status_code in (400, 422), resp.text
    assert attacker.spent() == 0.0


@pytest.mark.parametrize("table", ["residents", "households", "towns"])
def test_epsilon_at_the_grade_floor_is_answered(world, table):
    with world.lab.tx() as s:
        from countylab.catalog import service as catalog

        grade = Grade(catalog.get_by_name(s, table).grade)
    floor = dp_budget_limits(grade).min_epsilon
    attacker = world.attacker(RESIDENT_TABLES)
    assert attacker.ask(f"SELECT COUNT(*) FROM {table}", floor / 2).status_code in (400, 422)
    resp = attacker.ask(f"SELECT COUNT(*) FROM {table}", floor)
    assert resp.status_code == 200, resp.text
    assert resp.json()["epsilon_spent"] == pytest.approx(floor)


@pytest.fixture(scope="module")
def important(world: AttackLab) -> str:
    """A small 重要数据 dataset: its daily cap (100) is below what its budgets allow one analyst."""
    rows = [{"pid": f"P{i:03d}", "amount": i % 50} for i in range(40)]
    world.add_dataset("ledger_important", rows, unit="pid", grade="important", bounds={"amount": (0, 100)})
    return "ledger_important"


def test_many_near_free_questions_hit_the_daily_cap(world, important):
    """The cheapest questions, spread over several projects of one analyst so that no budget runs
    out: the analyst's daily query cap stops them (an exact count, whatever the budgets)."""
    limits = dp_budget_limits(Grade.important)
    floor, cap = limits.min_epsilon, limits.queries_per_day
    per_project = int(limits.epsilon_per_project / floor) // 2  # each project keeps half its budget
    projects = [world.attacker([important], fresh_user=True)]
    answered = 0
    for i in range(cap + per_project + 1):
        if i and i % per_project == 0:
            projects.append(world.attacker([important], like=projects[0]))
        resp = projects[-1].ask(f"SELECT COUNT(*) FROM {important} WHERE amount > {-1 - i}", floor)
        no_server_error(resp)
        if resp.status_code != 200:
            assert resp.status_code == 429, resp.text
            break
        answered += 1
    assert answered <= cap, f"{answered} near-free queries answered in one day (cap {cap})"
    assert answered >= per_project, "the floor itself is answered"
    assert projects[-1].spent() < limits.epsilon_per_project  # the cap, not a budget, stopped them
