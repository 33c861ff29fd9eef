"""The issue's attack list, each shown failing for the attacker END TO END through ``POST /api/query``.

The attacker is the demo developer, a member of ``elderly-care-demand`` with ``residents`` granted
(一般4级, privacy unit ``resident_id``, steward bounds on age and income).  Every refusal must
leave the budget untouched and be audited as ``query.refused``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from sqlalchemy import select

from countylab.audit.log import recent
from countylab.catalog import service as catalog
from countylab.privacy import budget
from countylab.storage.privacy_models import PrivacyBudget
from tests.privacy_gateway.conftest import ELDERLY_SQL, ask, client_for, project_id

ATTACKS = {
    "read a file": "SELECT COUNT(*) FROM read_csv('/etc/passwd')",
    "read a file as a table": "SELECT COUNT(*) FROM '/etc/passwd'",
    "read parquet directly": "SELECT COUNT(*) FROM read_parquet('/tmp/*.parquet')",
    "COPY out": "COPY residents TO '/tmp/countylab-stolen.csv'",
    "COPY in a SELECT": "COPY (SELECT * FROM residents) TO '/tmp/countylab-stolen.csv'",
    "ATTACH": "ATTACH '/tmp/countylab-other.db' AS other",
    "INSTALL": "INSTALL httpfs",
    "LOAD": "LOAD httpfs",
    "SET": "SET enable_external_access = true",
    "RESET": "RESET lock_configuration",
    "PRAGMA": "PRAGMA database_list",
    "multiple statements": "SELECT COUNT(*) FROM residents; SELECT COUNT(*) FROM residents",
    "statement smuggled after a comment": "SELECT COUNT(*) FROM residents -- x\n; DROP TABLE residents",
    "non-aggregate SELECT": "SELECT name, id_number FROM residents",
    "SELECT *": "SELECT * FROM residents",
    "SUM over the privacy unit": "SELECT SUM(resident_id) FROM residents",
    "AVG over the privacy unit": "SELECT AVG(resident_id) FROM residents",
    "MAX (exact extreme value)": "SELECT MAX(income) FROM residents",
    "GROUP BY id_number": "SELECT id_number, COUNT(*) FROM residents GROUP BY id_number",
    "GROUP BY the privacy unit": "SELECT resident_id, COUNT(*) FROM residents GROUP BY resident_id",
    "GROUP BY name (PII)": "SELECT name, COUNT(*) FROM residents GROUP BY name",
    "aggregate of an unbounded column": "SELECT SUM(household_id) FROM residents",
    "subquery": "SELECT COUNT(*) FROM (SELECT * FROM residents) t",
    "CTE": "WITH t AS (SELECT * FROM residents) SELECT COUNT(*) FROM t",
    "UNION": "SELECT COUNT(*) FROM residents UNION ALL SELECT COUNT(*) FROM residents",
    "system catalog": "SELECT COUNT(*) FROM duckdb_settings()",
    "information schema": "SELECT COUNT(*) FROM information_schema.tables",
    "unlisted function": "SELECT COUNT(*) FROM residents WHERE getenv('HOME') IS NOT NULL",
    "undeclared join": "SELECT COUNT(*) FROM residents r JOIN households h ON r.town_code = h.town_code",
    "ungranted table": "SELECT COUNT(*) FROM enterprises",
}


@pytest.fixture
def attacker(demo_lab):
    return demo_lab, client_for(demo_lab, "developer"), project_id(demo_lab)


def _spent(lab) -> float:
    with lab.tx() as s:
        return sum(r.epsilon_spent for r in s.execute(select(PrivacyBudget)).scalars())


def test_every_attack_in_the_list_is_refused_without_cost_and_audited(attacker):
    lab, client, pid = attacker
    for name, sql in ATTACKS.items():
        resp = ask(client, sql, pid, 0.5)
        assert resp.status_code in (400, 403, 404, 413, 422), (name, resp.status_code, resp.text)
        assert resp.json()["error"]["message"], name
    assert not Path("/tmp/countylab-stolen.csv").exists()
    assert not Path("/tmp/countylab-other.db").exists()
    assert _spent(lab) == 0.0
    with lab.tx() as s:
        refused = [e for e in recent(s, limit=1000, action_prefix="query.refused")]
    assert len(refused) == len(ATTACKS)
    assert {e.details["sql"] for e in refused} == set(ATTACKS.values())
    # the gateway still answers an honest query afterwards
    assert ask(client, ELDERLY_SQL, pid, 0.5).status_code == 200


def test_differencing_attack_is_hidden_in_noise_and_paid_for(attacker):
    """Count with and without the target: the difference (one person) is far inside the noise."""
    lab, client, pid = attacker
    with lab.tx() as s:
        ds = catalog.get_by_name(s, "residents")
        path = lab.ingestion.read_paths(ds)[0]
    target = (
        duckdb.connect()
        .execute(f"SELECT id_number FROM read_parquet('{path}') WHERE age > 80 LIMIT 1")
        .fetchone()[0]
    )
    with_target = ask(client, "SELECT COUNT(*) FROM residents WHERE age > 80", pid, 1.0).json()
    without = ask(
        client, f"SELECT COUNT(*) FROM residents WHERE age > 80 AND id_number <> '{target}'", pid, 1.0
    )
    assert without.status_code == 200, without.text
    without = without.json()
    (lo1, hi1), (lo2, hi2) = with_target["intervals"]["count(*)"][0], without["intervals"]["count(*)"][0]
    assert hi1 - lo1 > 5 and hi2 - lo2 > 5  # 95% intervals ±3/ε wide: one person is invisible
    # the two answers are statistically indistinguishable: their difference (one person) is
    # within the noise (bound chosen so that this fails by chance about once in 10^5 runs)
    assert abs((lo1 + hi1) / 2 - (lo2 + hi2) / 2) < 2 * ((hi1 - lo1) + (hi2 - lo2))
    assert with_target["epsilon_spent"] == without["epsilon_spent"] == 1.0
    # the grade's budget (ε=2 for 一般4级) is now gone: a third difference is refused, not answered
    third = ask(client, f"SELECT COUNT(*) FROM residents WHERE age > 80 AND id_number = '{target}'", pid, 1.0)
    assert third.status_code == 429 and third.json()["error"]["details"]["epsilon_remaining"] < 1e-9


@pytest.mark.slow
def test_averaging_attack_gets_the_same_cached_answer_and_pays_once(attacker):
    lab, client, pid = attacker
    first = ask(client, ELDERLY_SQL, pid, 0.5).json()
    assert first["cached"] is False and first["epsilon_spent"] == 0.5
    for _ in range(999):
        again = ask(client, ELDERLY_SQL, pid, 0.5).json()
        assert again["cached"] is True and again["epsilon_spent"] == 0.0
        assert again["rows"] == first["rows"]  # nothing to average
    assert again["budget_remaining"] == pytest.approx(1.5)
    with lab.tx() as s:
        assert budget.spent_within_limits(s)
        rows = list(s.execute(select(PrivacyBudget)).scalars())
        assert {r.epsilon_spent for r in rows} == {0.5}  # project and analyst ledgers, charged once
    # the same question in other words is a different query: it pays again
    other = ask(client, ELDERLY_SQL.replace("age > 80", "age >= 81"), pid, 0.5).json()
    assert other["cached"] is False and other["budget_remaining"] == pytest.approx(1.0)


def test_rare_key_probe_never_reveals_keys_held_by_few_people(attacker):
    lab, client, pid = attacker
    with lab.tx() as s:
        path = lab.ingestion.read_paths(catalog.get_by_name(s, "residents"))[0]
    exact = dict(
        duckdb.connect().execute(f"SELECT age, COUNT(*) FROM read_parquet('{path}') GROUP BY age").fetchall()
    )
    resp = ask(client, "SELECT age, COUNT(*) FROM residents GROUP BY age", pid, 1.0)
    assert resp.status_code == 200, resp.text
    released = {int(r[0]) for r in resp.json()["rows"]}
    rare = {a for a, n in exact.items() if n <= 3}
    assert rare, "the demo county has rare ages"
    assert released, "common ages are released"
    assert not released & rare
    assert len(released) < len(exact)
    assert any("partition selection" in n for n in resp.json()["notes"])
