"""How answers are shown: readable headers and values rounded to what their interval supports."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from countylab.privacy.present import (
    AnswerMeta,
    ColumnMeta,
    TableMeta,
    display,
    header,
    round_to_interval,
    sources,
)

META = AnswerMeta(
    {
        "residents": TableMeta(
            columns={
                "town_code": ColumnMeta("乡镇代码", {"330729001": "禾城街道", "330729002": "青溪街道"}),
                "income": ColumnMeta("年收入"),
                "age": ColumnMeta("年龄"),
                "id_number": ColumnMeta("公民身份号码"),
            },
            people=True,
            unit_column="id_number",
        ),
        "elderly_care_records": TableMeta(
            columns={"cost_yuan": ColumnMeta("费用（元）")}, people=False, unit_column="id_number"
        ),
    }
)


def headers(sql: str, names: list[str], lang: str = "zh-CN") -> list[str]:
    srcs = sources(sql, len(names))
    assert srcs is not None
    return [header(s, n, META, lang) for s, n in zip(srcs, names, strict=True)]


def test_count_sum_avg_get_words_in_both_languages():
    sql = "SELECT town_code, COUNT(*), SUM(age), AVG(income) FROM residents GROUP BY town_code"
    names = ["town_code", "count(*)", "sum(age)", "avg(income)"]
    assert headers(sql, names) == ["乡镇", "人数", "年龄合计", "年收入平均"]
    assert headers(sql, names, "en") == ["town", "People", "Total age", "Average income"]


def test_rows_of_a_non_person_table_are_rows_and_aliases_win():
    sql = "SELECT COUNT(*), SUM(cost_yuan) AS spent FROM elderly_care_records"
    assert headers(sql, ["count(*)", "spent"]) == ["行数", "spent"]
    sql = (
        "SELECT r.town_code AS t, COUNT(DISTINCT r.id_number), quantile_cont(r.age, 0.9) "
        "FROM residents r GROUP BY 1"
    )
    assert headers(sql, ["t", "c", "q"]) == ["t", "人数", "年龄 90% 分位数"]


def test_expressions_keep_their_own_names():
    sql = (
        "SELECT age / 10, SUM(income * 2), COUNT(*) * 2, COUNT(DISTINCT town_code) FROM residents GROUP BY 1"
    )
    names = ["(age / 10)", "sum((income * 2))", "(count_star() * 2)", "count(DISTINCT town_code)"]
    assert headers(sql, names) == [*names[:3], "乡镇代码（不同值）个数"]


def test_sql_that_cannot_be_read_keeps_the_engines_names():
    assert sources("SELEC nonsense", 1) is None
    assert sources("SELECT a, b FROM t", 3) is None  # the answer's columns do not match the projection
    shown = display({"columns": ["count(*)"], "rows": [[5]], "intervals": {}}, "garbage(", META, "zh-CN")
    assert shown["headers"] == ["count(*)"]


@pytest.mark.parametrize(
    ("value", "low", "high", "text", "lo", "hi"),
    [
        (1234.56, 1197.56, 1271.56, "1,230", "1,190", "1,280"),  # ±37 → nearest 10
        (3.14159, 2.34159, 3.94159, "3.1", "2.3", "4.0"),  # ±0.8 → one decimal
        (13, 7.0085, 18.9915, "13", "7", "19"),  # ±6 → units
        (51436.8, 33346.0, 69527.6, "50,000", "30,000", "70,000"),  # ±18,000 → nearest 10,000
        (2, 0.0, 7.99, "2", "0", "8"),  # clipped at zero
    ],
)
def test_rounding_examples(value, low, high, text, lo, hi):
    r = round_to_interval(value, low, high, isinstance(value, int))
    assert (r.text, r.low_text, r.high_text) == (text, lo, hi)


finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


@given(a=finite, b=finite, frac=st.floats(min_value=0.0, max_value=1.0), integer=st.booleans())
def test_the_rounded_value_always_lies_inside_the_interval(a, b, frac, integer):
    low, high = min(a, b), max(a, b)
    value = low + (high - low) * frac
    value = min(max(value, low), high)
    if integer:
        value = float(math.floor(value)) if math.floor(value) >= low else float(math.ceil(value))
        if not low <= value <= high:
            return
    r = round_to_interval(value, low, high, integer)
    assert low <= r.value <= high
    assert r.low <= low and r.high >= high  # the shown interval is rounded outwards
    # the text and the value are the same number (compared as the float the value is: a large
    # value's text may spell out binary digits its shortest repr leaves off, 888.53125 vs 888.5312)
    shown = Decimal(r.text.replace(",", ""))
    assert shown == Decimal(str(r.value)) or float(shown) == r.value or r.exponent < -6
    half = (high - low) / 2
    if half > 0 and not integer:  # a step no coarser than the half-width (finer only to stay inside)
        assert r.exponent <= math.floor(math.log10(half))


def test_display_puts_names_next_to_codes_and_lists_missing_groups():
    answer = {
        "columns": ["town_code", "count(*)"],
        "rows": [["330729001", 42]],
        "intervals": {"count(*)": [[36.0, 48.0]]},
    }
    shown = display(answer, "SELECT town_code, COUNT(*) FROM residents GROUP BY town_code", META, "zh-CN")
    assert shown["cells"] == [["禾城街道 (330729001)", "42"]]
    assert shown["names"][0][0] == "禾城街道" and shown["roles"] == ["group", "measure"]
    assert shown["missing"] == {"town_code": ["青溪街道"]}
    assert answer["rows"] == [["330729001", 42]]  # the raw answer is left as it was
