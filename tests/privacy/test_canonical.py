"""The answer cache's key: the same question in other words is one key; another question is not."""

from __future__ import annotations

import pytest

from countylab.privacy.canonical import canonical_key
from countylab.privacy.spec import ColumnKind, ColumnPolicy, TableSpec
from countylab.privacy.sqlcheck import parse_query

COLUMNS = {
    "town_code": ColumnPolicy(ColumnKind.CATEGORY, joinable_to=("towns.code",)),
    "income": ColumnPolicy(ColumnKind.NUMERIC, 0, 1000),
    "age": ColumnPolicy(ColumnKind.NUMERIC, 0, 120),
    "pid": ColumnPolicy(ColumnKind.IDENTIFIER),
}
TABLES = {
    "residents": TableSpec("residents", ("r.parquet",), "pid", 1, COLUMNS),
    "towns": TableSpec(
        "towns", ("t.parquet",), None, 1, {"code": ColumnPolicy(ColumnKind.CATEGORY), "r": ColumnPolicy()}
    ),
}
BASE = "SELECT town_code, SUM(income) FROM residents WHERE age > 60 GROUP BY town_code"
SAME = [
    "SELECT  town_code ,\n\tSUM( income )\nFROM residents\n WHERE age>60  GROUP BY town_code ",
    "select town_code, sum(income) from residents where age > 60 group by town_code",
    "SELECT TOWN_CODE, SUM(INCOME) FROM RESIDENTS WHERE AGE > 60 GROUP BY TOWN_CODE",
    "SELECT r.town_code, SUM(r.income) FROM residents r WHERE r.age > 60 GROUP BY r.town_code",
    "SELECT x.town_code, SUM(x.income) AS total FROM residents AS x WHERE x.age > 60 GROUP BY x.town_code",
    "SELECT residents.town_code, SUM(residents.income) FROM residents WHERE residents.age > 60 "
    "GROUP BY residents.town_code",
    "SELECT town_code, SUM(income) FROM residents WHERE age > 60 GROUP BY 1",
    BASE + ";",
    BASE + " -- a comment",
    BASE.replace("SELECT", "SELECT /* hi */"),
    BASE.replace("age > 60", "((age > 60))"),
]
OTHER = [
    BASE.replace("60", "61"),
    BASE.replace("SUM(income)", "SUM(age)"),
    BASE.replace("SUM(income)", "AVG(income)"),
    "SELECT SUM(income), town_code FROM residents WHERE age > 60 GROUP BY town_code",
    BASE.replace("age > 60", "age > 60 OR age < 10"),
    "SELECT town_code, SUM(income) FROM residents WHERE age > 60 GROUP BY town_code ORDER BY 2",
    "SELECT town_code, SUM(income) FROM residents WHERE age > 60 GROUP BY town_code LIMIT 3",
]


def key(sql: str) -> str:
    return canonical_key(parse_query(sql, TABLES, 1000))


@pytest.mark.parametrize("sql", SAME)
def test_the_same_question_in_other_words_has_one_key(sql: str) -> None:
    assert key(sql) == key(BASE)


@pytest.mark.parametrize("sql", OTHER)
def test_another_question_has_another_key(sql: str) -> None:
    assert key(sql) != key(BASE)


def test_parentheses_that_change_the_meaning_change_the_key() -> None:
    a = "SELECT COUNT(*) FROM residents WHERE (age > 60 OR age < 10) AND income > 5"
    b = "SELECT COUNT(*) FROM residents WHERE age > 60 OR (age < 10 AND income > 5)"
    assert key(a) != key(b)


def test_a_column_named_like_an_alias_is_still_that_column() -> None:
    a = "SELECT COUNT(*) FROM residents AS r JOIN towns AS t ON r.town_code = t.code WHERE t.r = 'x'"
    b = "SELECT COUNT(*) FROM residents AS t JOIN towns AS r ON t.town_code = r.code WHERE r.r = 'x'"
    assert key(a) == key(b)
