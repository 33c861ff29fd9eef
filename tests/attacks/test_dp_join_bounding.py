"""Join bounding: one person's contribution is bounded on the relation actually aggregated.

The attack: make a join multiply one person's rows while the engine still believes "each unit
contributes ≤ k rows", so the noise is far too small for what one person changes.  Chains
through a public table (private → public → private), a public table first and a private table
with k > 1 after it, the same private table joined with itself, self-joins on a shared
attribute, joins on a non-unique public column.  Each join must be refused (no charge) or
answered with every unit's contribution bounded: with enough ε the answer sits near the
bounded count, never near the multiplied one, and the reported interval is at least as wide as
one unit's real contribution demands.

A small county of our own makes the numbers exact: 30 people with one visit each and one
"whale" with 300 visits (k = 2 per person), three public regions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.attacks.dp_lab import (
    Attacker,
    AttackLab,
    interval_width,
    is_refusal,
    module_lab,
    no_server_error,
    value,
)

REGIONS = ["R1", "R2", "R3"]
OURS = ["visits", "people", "regions"]
DEMO = ["residents", "households", "elderly_care_records", "towns", "villages"]
FARM = ["farmland_plots", "households", "villages", "towns"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Iterator[AttackLab]:
    for lab in module_lab(tmp_path_factory, demo_template):
        people = [{"person_id": f"P{i:02d}", "region": REGIONS[i % 3], "income": 100 + i} for i in range(31)]
        visits = [{"person_id": f"P{i:02d}", "region": REGIONS[i % 3], "minutes": 10} for i in range(30)]
        visits += [{"person_id": "P30", "region": REGIONS[i % 3], "minutes": 90} for i in range(300)]
        regions = [{"region": r, "name": f"区{r}", "area": 10 * (i + 1)} for i, r in enumerate(REGIONS)]
        lab.add_dataset("regions", regions, unit=None, grade="general_1", key=["region"])
        lab.add_dataset(
            "people",
            people,
            unit="person_id",
            grade="general_2",
            bounds={"income": (0, 1000)},
            joins={"region": "regions.region", "person_id": "visits.person_id"},
        )
        lab.add_dataset(
            "visits",
            visits,
            unit="person_id",
            grade="general_2",
            k=2,
            bounds={"minutes": (0, 100)},
            joins={"region": "regions.region", "person_id": "people.person_id"},
        )
        yield lab


def refused_or_bounded(
    attacker: Attacker, sql: str, bound: float, epsilon: float = 2.0, multiplied: float | None = None
) -> Any:
    """Ask ``sql``: a refusal must cost nothing; an answer must sit near ``bound`` or below."""
    before = attacker.spent()
    resp = attacker.ask(sql, epsilon)
    no_server_error(resp)
    if is_refusal(resp):
        assert resp.status_code != 429, resp.text
        assert attacker.spent() == before, "a refused join was charged"
        return resp
    assert resp.status_code == 200, resp.text
    got = value(resp)
    margin = 4 * interval_width(resp) + 5
    assert got <= bound + margin, f"{got} > bounded {bound} (+{margin:.1f}): contributions not bounded"
    if multiplied is not None:
        assert bound + margin < multiplied, "test set-up: the multiplied answer must be far away"
    return resp


# -- our own county: exact bounded and multiplied counts ------------------------------------------

MULTIPLYING = {
    # name: (sql, bounded count, multiplied count)
    "private-public-private chain": (
        "SELECT COUNT(*) FROM visits v JOIN regions g ON v.region = g.region "
        "JOIN people p ON p.region = g.region",
        32,
        110 * 11 + 110 * 10 * 2,
    ),
    "public first, then two private tables": (
        "SELECT COUNT(*) FROM regions g JOIN visits v ON v.region = g.region "
        "JOIN people p ON p.region = g.region",
        32,
        110 * 11 + 110 * 10 * 2,
    ),
    "same private table twice on its unit": (
        "SELECT COUNT(*) FROM visits a JOIN visits b ON a.person_id = b.person_id",
        34,
        30 + 300 * 300,
    ),
    "same private table twice through a public one": (
        "SELECT COUNT(*) FROM visits a JOIN regions g ON a.region = g.region "
        "JOIN visits b ON b.region = g.region",
        32,
        110 * 110 * 3,
    ),
    "self-join on a shared attribute": (
        "SELECT COUNT(*) FROM people a JOIN people b ON a.region = b.region",
        31,
        11 * 11 + 10 * 10 * 2,
    ),
    "two private tables on a non-unit column": (
        "SELECT COUNT(*) FROM people p JOIN visits v ON p.region = v.region",
        32,
        11 * 110 + 10 * 110 * 2,
    ),
}


@pytest.mark.parametrize("name", sorted(MULTIPLYING))
def test_multiplying_join_is_refused_or_bounded(world, name):
    sql, bound, multiplied = MULTIPLYING[name]
    attacker = world.attacker(OURS)
    refused_or_bounded(attacker, sql, bound, multiplied=multiplied)


def test_whale_is_bounded_in_a_single_table(world):
    """The baseline: 300 visits of one person count as k = 2."""
    attacker = world.attacker(OURS)
    refused_or_bounded(attacker, "SELECT COUNT(*) FROM visits", 32, multiplied=330)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM regions g JOIN visits v ON g.region = v.region",
        "SELECT COUNT(*) FROM visits v JOIN regions g ON v.region = g.region",
        "SELECT COUNT(*) FROM people p JOIN visits v ON p.person_id = v.person_id",
        "SELECT COUNT(*) FROM visits v JOIN people p ON v.person_id = p.person_id",
    ],
    ids=["public-first", "private-first", "people-visits-on-unit", "visits-people-on-unit"],
)
def test_claimed_sensitivity_covers_k_rows_after_any_join(world, sql):
    """A unit with k = 2 rows in visits has 2 rows after these joins: the noise must say so."""
    attacker = world.attacker(OURS)
    bare = attacker.ask("SELECT COUNT(*) FROM visits", 2.0)
    joined = attacker.ask(sql, 2.0)
    no_server_error(joined)
    if is_refusal(joined):
        return
    assert bare.status_code == joined.status_code == 200, joined.text
    assert interval_width(joined) >= 0.99 * interval_width(bare), (sql, joined.json()["intervals"])
    assert value(joined) <= 32 + 4 * interval_width(joined) + 5


@pytest.mark.parametrize(
    ("agg", "bound"),
    [("SUM(p.income)", 31 * 130), ("AVG(p.income)", 1000), ("COUNT(DISTINCT p.person_id)", 31)],
)
def test_sum_and_avg_over_a_self_join_are_bounded(world, agg, bound):
    """Incomes are 100–130: a sum above 31 × 130 (plus noise) counts someone twice."""
    attacker = world.attacker(OURS)
    refused_or_bounded(attacker, f"SELECT {agg} FROM people p JOIN people q ON p.region = q.region", bound)


def test_a_join_of_two_private_tables_charges_both(world):
    attacker = world.attacker(OURS)
    resp = attacker.ask("SELECT COUNT(*) FROM people p JOIN visits v ON p.person_id = v.person_id", 1.0)
    no_server_error(resp)
    if is_refusal(resp):
        return
    assert resp.status_code == 200, resp.text
    spent = {b["dataset"]: b["epsilon_spent"] for b in attacker.budgets() if b.get("scope") == "project"}
    assert spent.get("people", 0) > 0 and spent.get("visits", 0) > 0, spent


# -- the demo county: the issue's own examples ------------------------------------------------------


def test_residents_towns_households_chain_is_refused_or_bounded(world):
    """The issue's chain: every resident multiplied by every household of the town."""
    attacker = world.attacker(DEMO)
    n_res, n_hh = (
        world.exact("SELECT count(*) FROM {r}", r="residents")[0][0],
        world.exact("SELECT count(*) FROM {h}", h="households")[0][0],
    )
    multiplied = world.exact(
        "SELECT count(*) FROM {r} r JOIN {h} h ON r.town_code = h.town_code", r="residents", h="households"
    )[0][0]
    sql = (
        "SELECT COUNT(*) FROM residents r JOIN towns t ON r.town_code = t.town_code "
        "JOIN households h ON h.town_code = t.town_code"
    )
    refused_or_bounded(attacker, sql, n_res + n_hh, epsilon=1.0, multiplied=multiplied)


def test_group_by_every_column_over_the_chain_releases_no_record(world):
    attacker = world.attacker(DEMO)
    cols = "r.gender, r.age, r.education, r.occupation, r.marital_status"
    sql = (
        f"SELECT {cols}, COUNT(*) FROM residents r JOIN towns t ON r.town_code = t.town_code "
        f"JOIN households h ON h.town_code = t.town_code GROUP BY {cols}"
    )
    resp = attacker.ask(sql, 1.0)
    no_server_error(resp)
    if is_refusal(resp):
        return
    unique = {
        tuple(str(x) for x in row)
        for row in world.exact(
            "SELECT gender, age, education, occupation, marital_status FROM {r} "
            "GROUP BY ALL HAVING count(*) = 1",
            r="residents",
        )
    }
    released = {tuple(str(x) for x in row[:5]) for row in resp.json()["rows"]}
    assert not released & unique, f"{len(released & unique)} single-person records released"


def test_public_table_first_then_k10_private_table(world):
    """``towns JOIN farmland_plots``: a household has up to 10 plots, so sensitivity is 10, not 1."""
    attacker = world.attacker(FARM)
    bare = attacker.ask("SELECT COUNT(*) FROM farmland_plots", 1.0)
    for sql in (
        "SELECT COUNT(*) FROM towns t JOIN farmland_plots f ON t.town_code = f.town_code",
        "SELECT COUNT(*) FROM villages v JOIN farmland_plots f ON v.village_code = f.village_code",
        "SELECT SUM(f.area_mu) FROM towns t JOIN farmland_plots f ON t.town_code = f.town_code",
    ):
        joined = attacker.ask(sql, 1.0)
        no_server_error(joined)
        if is_refusal(joined):
            continue
        assert joined.status_code == 200, joined.text
        if sql.startswith("SELECT COUNT"):
            assert interval_width(joined) >= 0.99 * interval_width(bare), (sql, joined.json()["intervals"])
        else:
            direct = attacker.ask("SELECT SUM(area_mu) FROM farmland_plots", 1.0)
            assert interval_width(joined) >= 0.99 * interval_width(direct), (sql, joined.json()["intervals"])


def test_care_records_joined_twice_are_bounded(world):
    """Joined with itself, a resident with n records has n² rows; at most k = 20 of them may count."""
    attacker = world.attacker(DEMO)
    per_unit = "(SELECT count(*) AS c FROM {e} GROUP BY resident_id)"
    bounded, squared = world.exact(
        f"SELECT sum(least(c * c, 20)), sum(c * c) FROM {per_unit}", e="elderly_care_records"
    )[0]
    sql = (
        "SELECT COUNT(*) FROM elderly_care_records a "
        "JOIN elderly_care_records b ON a.resident_id = b.resident_id"
    )
    resp = refused_or_bounded(attacker, sql, bounded, epsilon=1.0)
    assert bounded < squared, "test set-up: someone has more than sqrt(20) records"
    if resp.status_code == 200:
        # the noise must cover one resident's 20 rows, as for the table on its own
        bare = attacker.ask("SELECT COUNT(*) FROM elderly_care_records", 1.0)
        assert interval_width(resp) >= 0.99 * interval_width(bare), resp.json()["intervals"]


def test_care_records_with_their_residents_claim_k20(world):
    attacker = world.attacker(DEMO)
    bare = attacker.ask("SELECT COUNT(*) FROM elderly_care_records", 0.5)
    joined = attacker.ask(
        "SELECT COUNT(*) FROM elderly_care_records e JOIN residents r ON e.resident_id = r.resident_id", 0.5
    )
    no_server_error(joined)
    if is_refusal(joined):
        return
    assert joined.status_code == bare.status_code == 200, joined.text
    assert interval_width(joined) >= 0.99 * interval_width(bare), joined.json()["intervals"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM households h JOIN residents r ON h.household_id = r.household_id",
        "SELECT COUNT(*) FROM residents r JOIN households h ON r.household_id = h.household_id",
        "SELECT COUNT(*) FROM households h JOIN residents r ON h.head_resident_id = r.resident_id",
    ],
    ids=["household-to-members", "members-to-household", "head-of-household"],
)
def test_two_private_tables_on_a_foreign_key_are_refused_or_bounded(world, sql):
    """Residents and households are different units: rows have two owners."""
    attacker = world.attacker(DEMO)
    n_hh = world.exact("SELECT count(*) FROM {h}", h="households")[0][0]
    refused_or_bounded(attacker, sql, n_hh, epsilon=1.0)


def test_join_on_a_non_unique_public_column_is_refused_or_bounded(world):
    """``villages.town_code`` is not unique: every resident meets every village of the town."""
    attacker = world.attacker(DEMO)
    n_res = world.exact("SELECT count(*) FROM {r}", r="residents")[0][0]
    multiplied = world.exact(
        "SELECT count(*) FROM {r} r JOIN {v} v ON r.town_code = v.town_code", r="residents", v="villages"
    )[0][0]
    sql = "SELECT COUNT(*) FROM residents r JOIN villages v ON r.town_code = v.town_code"
    refused_or_bounded(attacker, sql, n_res, epsilon=1.0, multiplied=multiplied)
