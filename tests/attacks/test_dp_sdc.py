"""SDC: 一般2级 data gets DP like the rest; no exact-answer mode is left in the query API.

SDC mode answered exact aggregates with no budget.  Suppressed cells still printed their
group keys (GROUP BY every column printed whole records), and "all" minus "all but one
household" printed that household's exact values.  The lab chose to remove interactive exact
answers: a request for ``mode="sdc"`` is refused or answered with DP, every answer on 一般2级
data is noisy, carries an interval and is paid for, differencing gives noise, and grouping by
every column releases no record.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.attacks.dp_lab import AttackLab, is_refusal, module_lab, no_server_error, value

FARM = ["farmland_plots", "households", "villages", "towns"]
FIRMS = ["enterprises", "towns"]
GRANTS = FARM + ["enterprises"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Iterator[AttackLab]:
    yield from module_lab(tmp_path_factory, demo_template)


def assert_not_exact_release(attacker, resp) -> None:
    """A refusal costs nothing; an answer is a DP answer: intervals, a charge, no SDC mode."""
    no_server_error(resp)
    if is_refusal(resp):
        assert resp.status_code != 429, resp.text
        assert attacker.spent() == 0.0
        return
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body.get("mode") != "sdc", body
    assert body["intervals"] or not body["rows"], "an answer without intervals is an exact answer"
    assert body["epsilon_spent"] > 0 and attacker.spent() > 0, "an answer without a charge"
    assert not body.get("suppressed"), "suppressed cells are an SDC artefact (and used to echo keys)"


SDC_QUERIES = {
    "count by crop": "SELECT crop, COUNT(*) FROM farmland_plots GROUP BY crop",
    "sum by town": "SELECT town_code, SUM(area_mu) FROM farmland_plots GROUP BY town_code",
    "avg yield": "SELECT AVG(yield_kg_per_mu) FROM farmland_plots",
    "count of firms by industry": "SELECT industry, COUNT(*) FROM enterprises GROUP BY industry",
    "employees by town": "SELECT town_code, SUM(employees) FROM enterprises GROUP BY town_code",
    "filter on the unit": "SELECT SUM(area_mu) FROM farmland_plots WHERE household_id <> 'H0000001'",
    "group by every column": (
        "SELECT year, village_code, crop, irrigation, area_mu, COUNT(*) FROM farmland_plots "
        "GROUP BY year, village_code, crop, irrigation, area_mu"
    ),
}


@pytest.mark.parametrize("name", sorted(SDC_QUERIES))
@pytest.mark.parametrize("epsilon", [None, 0.5])
def test_sdc_mode_gives_no_exact_answer(world, name, epsilon):
    attacker = world.attacker(GRANTS)
    resp = attacker.ask(SDC_QUERIES[name], epsilon, mode="sdc")
    assert_not_exact_release(attacker, resp)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM farmland_plots",
        "SELECT SUM(area_mu) FROM farmland_plots",
        "SELECT COUNT(*) FROM enterprises",
        "SELECT SUM(employees) FROM enterprises",
    ],
)
def test_general_2_is_answered_with_noise_intervals_and_a_charge(world, sql):
    attacker = world.attacker(GRANTS)
    table = sql.rsplit(" ", 1)[-1]
    column = "*" if "COUNT" in sql else sql[sql.index("(") + 1 : sql.index(")")]
    exact = world.exact(
        f"SELECT {'count(*)' if column == '*' else f'sum({column})'} FROM {{t}}",
        t=table,
    )[0][0]
    values = []
    for i in range(3):  # three different questions with the same meaning: fresh noise each
        resp = attacker.ask(f"{sql} WHERE {i} > -1", 0.05)
        assert_not_exact_release(attacker, resp)
        assert resp.status_code == 200
        values.append(value(resp))
    assert attacker.spent() == pytest.approx(0.15)
    assert any(abs(v - float(exact)) > 1e-6 for v in values), (values, exact)


def test_all_minus_all_but_one_gives_noise_not_a_household(world):
    attacker = world.attacker(GRANTS)
    largest = "SELECT household_id, sum(least(50, greatest(0, area_mu))) FROM {f} GROUP BY 1 ORDER BY 2 DESC"
    target, area = world.exact(largest + " LIMIT 1", f="farmland_plots")[0]
    everyone = attacker.ask("SELECT SUM(area_mu) FROM farmland_plots", 0.5)
    others = attacker.ask(f"SELECT SUM(area_mu) FROM farmland_plots WHERE household_id <> '{target}'", 0.5)
    for resp in (everyone, others):
        assert_not_exact_release(attacker, resp)
        assert resp.status_code == 200, resp.text
    difference = value(everyone) - value(others)
    assert abs(difference - float(area)) > 1e-3, "the difference is the household's exact value"
    lo, hi = everyone.json()["intervals"]["sum(area_mu)"][0]
    assert hi - lo > float(area), "the noise must hide one household's whole contribution"
    assert attacker.spent() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("farmland_plots", "year, village_code, crop, irrigation, area_mu, yield_kg_per_mu"),
        ("farmland_plots", "village_code, crop, area_mu"),
        ("enterprises", "entity_type, industry_code, town_code, employees, established"),
    ],
)
@pytest.mark.parametrize("mode", ["dp", "sdc"])
def test_group_by_every_column_never_echoes_a_record(world, table, columns, mode):
    attacker = world.attacker(GRANTS)
    resp = attacker.ask(f"SELECT {columns}, COUNT(*) FROM {table} GROUP BY {columns}", 1.0, mode=mode)
    assert_not_exact_release(attacker, resp)
    if is_refusal(resp):
        return
    unique = {
        tuple(str(x) for x in row)
        for row in world.exact(f"SELECT {columns} FROM {{t}} GROUP BY ALL HAVING count(*) = 1", t=table)
    }
    width = len(columns.split(","))
    released = {tuple(str(x) for x in row[:width]) for row in resp.json()["rows"]}
    assert not released & unique, f"{len(released & unique)} single records released"


def test_the_api_no_longer_advertises_sdc(world):
    """The console's table list tells what the grade allows: no exact-aggregate option remains."""
    attacker = world.attacker(GRANTS)
    resp = attacker.client.get(f"/api/projects/{attacker.project_id}/query-tables")
    assert resp.status_code == 200, resp.text
    for item in resp.json()["items"]:
        offered = {k: v for k, v in item.items() if "sdc" in k.lower()}
        assert not any(v is True or (isinstance(v, dict) and v.get("allowed")) for v in offered.values()), (
            item["name"],
            offered,
        )
