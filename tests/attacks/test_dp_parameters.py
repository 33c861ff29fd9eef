"""Parameters: every field of ``POST /api/query`` validated; no input yields a 5xx or a free answer.

ε and δ as NaN, ±∞, negative, zero, huge, strings, booleans, lists; ids beyond int64; versions
that do not exist; SQL nested deeper than any parser's stack, longer than the limit, full of
Unicode look-alikes, invisible characters and control bytes; bodies that are not objects.  The
property for each: a 4xx with a JSON error (never a 5xx, never a stuck request), nothing charged
for a refusal, and any answer that does come back is a valid DP answer (finite JSON, charged at
least the grade's floor).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.attacks.dp_lab import Attacker, AttackLab, finite_json, module_lab, no_server_error

GRANTS = ["residents", "households", "towns", "villages"]
COUNT = "SELECT COUNT(*) FROM residents"
GROUPED = "SELECT age, COUNT(*) FROM residents GROUP BY age"  # partition selection spends δ
INT64 = 2**63


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Iterator[AttackLab]:
    yield from module_lab(tmp_path_factory, demo_template)


def check(attacker: Attacker, resp: Any, *, must_refuse: bool = True) -> None:
    no_server_error(resp)
    if must_refuse:
        assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])
    if resp.status_code >= 400 and resp.json()["error"]["code"] != "query_failed":
        assert attacker.spent() == 0.0, "a refused request was charged"
    else:
        finite_json(resp)
        body = resp.json()
        assert body["epsilon_spent"] >= 0.02 or body["cached"], body


def raw(attacker: Attacker, text: str) -> Any:
    return attacker.client.post(
        "/api/query", content=text.encode(), headers={"content-type": "application/json"}
    )


EPSILONS = {
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "negative": "-1",
    "zero": "0",
    "negative zero": "-0.0",
    "huge": "1e308",
    "overflowing literal": "1e400",
    "subnormal": "5e-324",
    "above the grade's budget": "1000",
    "string": '"abc"',
    "empty string": '""',
    "numeric string nan": '"nan"',
    "numeric string inf": '"inf"',
    "boolean": "true",
    "list": "[1]",
    "object": '{"value": 1}',
}


@pytest.mark.parametrize("name", sorted(EPSILONS))
def test_bad_epsilon(world, name):
    attacker = world.attacker(GRANTS)
    resp = raw(
        attacker, f'{{"sql": "{COUNT}", "project_id": {attacker.project_id}, "epsilon": {EPSILONS[name]}}}'
    )
    check(attacker, resp)


DELTAS = {
    "NaN": "NaN",
    "Infinity": "Infinity",
    "negative": "-1e-9",
    "one": "1",
    "half": "0.5",
    "above the grade's cap": "1e-4",
    "string": '"tiny"',
    "huge": "1e308",
}


@pytest.mark.parametrize("name", sorted(DELTAS))
def test_bad_delta(world, name):
    attacker = world.attacker(GRANTS)
    pid = attacker.project_id
    body = f'{{"sql": "{GROUPED}", "project_id": {pid}, "epsilon": 0.5, "delta": {DELTAS[name]}}}'
    check(attacker, raw(attacker, body))


PROJECT_IDS = {
    "int64 max + 1": str(INT64),
    "uint64 max + 1": str(2**64),
    "int64 min - 1": str(-INT64 - 1),
    "10^30": str(10**30),
    "negative": "-1",
    "zero": "0",
    "fraction": "1.5",
    "float exponent": "1e20",
    "string": '"x"',
    "null": "null",
    "NaN": "NaN",
}


@pytest.mark.parametrize("name", sorted(PROJECT_IDS))
def test_bad_project_id(world, name):
    attacker = world.attacker(GRANTS)
    resp = raw(attacker, f'{{"sql": "{COUNT}", "project_id": {PROJECT_IDS[name]}, "epsilon": 0.1}}')
    check(attacker, resp)


VERSIONS = {
    "beyond int64": {"residents": INT64},
    "far beyond int64": {"residents": 10**30},
    "negative": {"residents": -1},
    "zero": {"residents": 0},
    "missing version": {"residents": 999_999},
    "unknown table": {"no_such_table": 1},
    "ungranted table": {"enterprises": 1},
    "empty name": {"": 1},
    "string": {"residents": "latest"},
}


@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_bad_versions(world, name):
    attacker = world.attacker(GRANTS)
    resp = attacker.post({"sql": COUNT, "epsilon": 0.1, "versions": VERSIONS[name]})
    check(attacker, resp)


@pytest.mark.parametrize("version", [str(INT64), str(10**30), "0", "-1", "99999"])
def test_bad_as_of_in_the_sql(world, version):
    attacker = world.attacker(GRANTS)
    check(attacker, attacker.ask(f"SELECT COUNT(*) FROM residents AS OF {version}", 0.1))


DEEP = 20_000
SQLS = {
    "nested parentheses": f"{COUNT} WHERE " + "(" * DEEP + "age > 1" + ")" * DEEP,
    "nested NOT": f"{COUNT} WHERE " + "NOT " * DEEP + "age > 1",
    "nested unary minus": f"{COUNT} WHERE age > " + "-" * DEEP + "1",
    "nested abs": f"{COUNT} WHERE " + "abs(" * 3000 + "age" + ")" * 3000 + " > 1",
    "nested CASE": f"{COUNT} WHERE " + "CASE WHEN age > 1 THEN " * 2000 + "TRUE" + " END" * 2000,
    "long AND chain": f"{COUNT} WHERE " + " AND ".join(["age > 1"] * 5000),
    "long arithmetic chain": f"{COUNT} WHERE age" + " + 1" * 5000 + " > 0",
    "huge IN list": f"{COUNT} WHERE age IN ({', '.join(str(i) for i in range(5000))})",
    "too long": f"{COUNT} WHERE name <> '{'x' * 30_000}'",
    "very long": f"{COUNT} WHERE name <> '{'x' * 2_000_000}'",
    "many joins": COUNT
    + "".join(f" JOIN towns t{i} ON residents.town_code = t{i}.town_code" for i in range(60)),
    "huge numeric literal": f"{COUNT} WHERE age > 1e999",
    "huge integer literal": f"{COUNT} WHERE age > {10**60}",
    "huge LIMIT": f"SELECT town_code, COUNT(*) FROM residents GROUP BY town_code LIMIT {10**30}",
    "quantile at the edge": "SELECT QUANTILE_CONT(income, 0.99999999999999999999) FROM residents",
    "NUL byte": f"{COUNT} WHERE name <> 'a\x00b'",
    "NUL outside a literal": f"{COUNT}\x00; SELECT 1",
    "fullwidth keywords": "ＳＥＬＥＣＴ COUNT(*) ＦＲＯＭ residents",
    "fullwidth semicolon": f"{COUNT}；SELECT COUNT(*) FROM households",
    "cyrillic homoglyph table": "SELECT COUNT(*) FROM rеsidents",
    "zero-width space in a keyword": "SEL\u200bECT COUNT(*) FROM residents",
    "right-to-left override": f"{COUNT} WHERE name <> '\u202eevil\u202c'",
    "line separator": "SELECT COUNT(*)\u2028FROM residents",
    "byte order mark": f"\ufeff{COUNT}",
    "emoji identifier": 'SELECT COUNT(*) FROM residents AS "🙂" WHERE "🙂".age > 1',
    "combining characters": f"{COUNT} WHERE name = 'a\u0301\u0301\u0301'",
    "lone surrogate escape": None,  # sent raw below: JSON "\ud800" is not valid UTF-8 text
    "empty": "",
    "whitespace only": " \n\t ",
    "comment only": "-- nothing here",
}


@pytest.mark.parametrize("name", sorted(SQLS))
def test_hostile_sql_text(world, name):
    attacker = world.attacker(GRANTS)
    if SQLS[name] is None:
        sql = "SELECT COUNT(*) FROM residents WHERE name = '\\ud800'"
        resp = raw(attacker, f'{{"sql": "{sql}", "project_id": {attacker.project_id}, "epsilon": 0.1}}')
    else:
        resp = attacker.ask(SQLS[name], 0.1)
    # a few of these are legitimate questions (a long AND chain, a big IN list): answering them
    # is fine, a 5xx or a free answer is not
    check(attacker, resp, must_refuse=False)


BODIES = {
    "not JSON": "SELECT COUNT(*) FROM residents",
    "JSON array": "[1, 2, 3]",
    "JSON string": '"SELECT 1"',
    "truncated JSON": '{"sql": "SELECT',
    "sql as a list": '{"sql": ["SELECT COUNT(*) FROM residents"], "project_id": 1, "epsilon": 0.1}',
    "sql as a number": '{"sql": 1, "project_id": 1, "epsilon": 0.1}',
    "deeply nested JSON": '{"sql": ' + "[" * 5000 + "]" * 5000 + ', "project_id": 1, "epsilon": 0.1}',
    "unknown mode": '{"sql": "SELECT COUNT(*) FROM residents", "project_id": 1, "epsilon": 0.1, "mode": "x"}',
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_malformed_body(world, name):
    attacker = world.attacker(GRANTS)
    body = BODIES[name].replace('"project_id": 1', f'"project_id": {attacker.project_id}')
    # with no mode field left in the API an unknown mode may be ignored (a DP answer): that is fine
    check(attacker, raw(attacker, body), must_refuse=name != "unknown mode")


def test_the_gateway_still_answers_after_all_of_it(world):
    """None of the hostile inputs left the gateway stuck or broken."""
    attacker = world.attacker(GRANTS)
    resp = attacker.ask("SELECT town_code, COUNT(*) FROM residents GROUP BY town_code", 0.5)
    assert resp.status_code == 200, resp.text
    finite_json(resp)
