"""The answer cache: the same question in other clothes gets the same noise; no cross-project channel.

Averaging needs fresh noise for the same question.  Asking it again with other whitespace,
keyword or identifier case, a table alias, qualified columns, a comment or a trailing
semicolon must return the stored noisy answer at no cost.  And the cache must tell one project
nothing about another: a project's first question is always charged and freshly noised, even
if another project asked it a second earlier; revoking a grant or removing a member closes the
cache too; a new dataset version is a new question.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from countylab.catalog import service as catalog
from countylab.identity import projects as prj
from countylab.identity.access import SYSTEM
from tests.attacks.dp_lab import AttackLab, module_lab, no_server_error

GRANTS = ["residents", "households", "towns"]
BASE = "SELECT town_code, SUM(income) FROM residents WHERE age > 60 GROUP BY town_code"
SAME_QUESTION = {
    "extra whitespace": (
        "SELECT  town_code ,\n\tSUM( income )\nFROM residents\n WHERE age>60  GROUP BY town_code "
    ),
    "lower-case keywords": "select town_code, sum(income) from residents where age > 60 group by town_code",
    "upper-case identifiers": (
        "SELECT TOWN_CODE, SUM(INCOME) FROM RESIDENTS WHERE AGE > 60 GROUP BY TOWN_CODE"
    ),
    "table alias": "SELECT r.town_code, SUM(r.income) FROM residents r WHERE r.age > 60 GROUP BY r.town_code",
    "table alias with AS": (
        "SELECT x.town_code, SUM(x.income) FROM residents AS x WHERE x.age > 60 GROUP BY x.town_code"
    ),
    "qualified columns": (
        "SELECT residents.town_code, SUM(residents.income) FROM residents "
        "WHERE residents.age > 60 GROUP BY residents.town_code"
    ),
    "group by position": "SELECT town_code, SUM(income) FROM residents WHERE age > 60 GROUP BY 1",
    "trailing semicolon": BASE + ";",
    "line comment": BASE + " -- the same question",
    "block comment": BASE.replace("SELECT", "SELECT /* hi */"),
    "parenthesised filter": BASE.replace("age > 60", "(age > 60)"),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Iterator[AttackLab]:
    for lab in module_lab(tmp_path_factory, demo_template):
        rows = [{"pid": f"P{i:03d}", "amount": 10 + i % 7} for i in range(60)]
        lab.add_dataset("versioned", rows, unit="pid", grade="general_3", bounds={"amount": (0, 100)})
        yield lab


def values(resp) -> list:
    return resp.json()["rows"]


@pytest.mark.parametrize("name", sorted(SAME_QUESTION))
def test_the_same_question_in_other_words_returns_the_stored_answer_for_free(world, name):
    attacker = world.attacker(GRANTS)
    first = attacker.ask(BASE, 0.5)
    assert first.status_code == 200, first.text
    assert first.json()["cached"] is False
    again = attacker.ask(SAME_QUESTION[name], 0.5)
    no_server_error(again)
    assert again.status_code == 200, again.text
    assert again.json()["cached"] is True and again.json()["epsilon_spent"] == 0.0, again.json()
    assert values(again) == values(first), "fresh noise for the same question: averaging works"
    assert attacker.spent() == pytest.approx(0.5)


def test_repeating_a_question_many_times_gives_nothing_to_average(world):
    attacker = world.attacker(GRANTS)
    answers = [values(attacker.ask("SELECT AVG(income) FROM residents", 0.2)) for _ in range(15)]
    assert all(a == answers[0] for a in answers)
    assert attacker.spent() == pytest.approx(0.2)


def test_another_project_asking_the_same_question_pays_and_gets_fresh_noise(world):
    """A cache hit must not cross projects: B learns nothing about whether A asked."""
    a = world.attacker(GRANTS)
    b = world.attacker(GRANTS, fresh_user=True)
    sql = "SELECT SUM(income) FROM residents WHERE age > 70"
    first = a.ask(sql, 0.5)
    second = b.ask(sql, 0.5)
    for resp in (first, second):
        assert resp.status_code == 200, resp.text
        assert resp.json()["cached"] is False and resp.json()["epsilon_spent"] == pytest.approx(0.5)
    assert values(first) != values(second)
    assert a.spent() == pytest.approx(0.5) and b.spent() == pytest.approx(0.5)
    # and B's answer looks exactly like an uncached first answer: same fields, same notes
    assert sorted(first.json()) == sorted(second.json())
    assert first.json()["notes"] == second.json()["notes"]


def test_the_same_analyst_in_two_projects_pays_in_each(world):
    a = world.attacker(GRANTS)
    other = world.attacker(GRANTS, like=a)
    sql = "SELECT SUM(income) FROM residents WHERE age > 75"
    assert a.ask(sql, 0.5).json()["cached"] is False
    resp = other.ask(sql, 0.5)
    assert resp.status_code == 200 and resp.json()["cached"] is False
    assert other.spent() == pytest.approx(0.5)


def test_a_revoked_grant_closes_the_cache(world):
    attacker = world.attacker(GRANTS)
    sql = "SELECT COUNT(*) FROM households WHERE household_size > 3"
    assert attacker.ask(sql, 0.5).status_code == 200
    with world.lab.tx() as s:
        prj.revoke_grant(s, SYSTEM, attacker.project_id, catalog.get_by_name(s, "households").id)
    resp = attacker.ask(sql, 0.5)
    no_server_error(resp)
    assert resp.status_code in (403, 404, 422), resp.text


def test_a_removed_member_cannot_read_the_projects_cache(world):
    attacker = world.attacker(GRANTS, fresh_user=True)
    sql = "SELECT COUNT(*) FROM residents WHERE age > 20"
    assert attacker.ask(sql, 0.5).status_code == 200
    with world.lab.tx() as s:
        prj.remove_member(s, SYSTEM, attacker.project_id, attacker.user_id)
    resp = attacker.ask(sql, 0.5)
    no_server_error(resp)
    assert resp.status_code == 403, resp.text


def test_a_new_version_is_a_new_question(world):
    attacker = world.attacker(["versioned"])
    sql = "SELECT SUM(amount) FROM versioned"
    first = attacker.ask(sql, 0.5)
    assert first.status_code == 200, first.text
    with world.lab.tx() as s:
        ds = catalog.get_by_name(s, "versioned")
        path = world.lab.ingestion.read_paths(ds)[0]
        dataset_id = ds.id
    world.lab.ingestion.ingest_file(SYSTEM, dataset_id, Path(path))
    second = attacker.ask(sql, 0.5)
    assert second.status_code == 200, second.text
    assert second.json()["cached"] is False and values(second) != values(first)
    # the old version, asked for by number, is still the old (cached) answer
    pinned = attacker.ask("SELECT SUM(amount) FROM versioned AS OF 1", 0.5)
    assert pinned.status_code == 200, pinned.text
    assert pinned.json()["cached"] is True and values(pinned) == values(first)
    assert attacker.spent() == pytest.approx(1.0)
