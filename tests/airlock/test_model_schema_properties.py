"""Invariants of a model's input schema (countylab.serving.schema), for any categories and bounds.

* a category written as its name or as its code encodes the same; one-hot has exactly one 1;
* any number outside the steward's bounds is refused, naming the field; inside, it passes;
* an unknown field or a missing one is refused whatever else the record holds;
* scaling by the bounds maps them to [0, 1]; ordinal is the category's position.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from countylab.errors import ValidationFailed
from countylab.serving import schema as sch

codes = st.lists(st.from_regex(r"[0-9]{3,6}", fullmatch=True), min_size=1, max_size=12, unique=True)
bounds = st.tuples(st.integers(-1000, 1000), st.integers(1, 5000)).map(
    lambda t: (float(t[0]), float(t[0] + t[1]))
)


def _schema(cats: list[str], lo: float, hi: float, encoding: str) -> sch.InputSchema:
    labels = tuple((c, f"第{c}镇") for c in cats)
    facts = {
        "town_code": sch.ColumnFacts(
            "town_code", "string", "乡镇", categories=labels, category_source="key_set:t"
        ),
        "amount": sch.ColumnFacts("amount", "float64", "金额", lower=lo, upper=hi),
    }
    declared = [
        {"name": "town", "column": "town_code", "encoding": encoding},
        {"name": "amount", "encoding": "scale" if encoding != "raw" else "raw"},
    ]
    built = sch.build([], facts, declared)
    assert built is not None
    return built


@settings(max_examples=60, deadline=None)
@given(codes, bounds, st.data(), st.sampled_from(["raw", "onehot", "ordinal"]))
def test_names_and_codes_encode_alike(cats: list[str], b: tuple[float, float], data: Any, enc: str) -> None:
    lo, hi = b
    schema = _schema(cats, lo, hi, enc)
    i = data.draw(st.integers(0, len(cats) - 1))
    x = data.draw(st.floats(lo, hi, allow_nan=False))
    by_name = sch.expand(schema, sch.raw_record(schema, {"town": f"第{cats[i]}镇", "amount": x}))
    by_code = sch.expand(schema, sch.raw_record(schema, {"town_code": cats[i], "amount": x}))
    assert by_name == by_code and len(by_name) == len(schema.columns)
    if enc == "onehot":
        assert by_name[: len(cats)].count(1.0) == 1 and by_name[i] == 1.0
    if enc == "ordinal":
        assert by_name[0] == float(i)
    if enc != "raw":
        assert -1e-9 <= by_name[-1] <= 1 + 1e-9  # scaled by the steward's bounds


@settings(max_examples=60, deadline=None)
@given(codes, bounds, st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_out_of_bounds_is_refused_naming_the_field(cats: list[str], b: tuple[float, float], x: float) -> None:
    lo, hi = b
    schema = _schema(cats, lo, hi, "raw")
    record = {"town": cats[0], "amount": x}
    if lo <= x <= hi:
        assert sch.raw_record(schema, record)[1] == x
    else:
        with pytest.raises(ValidationFailed) as err:
            sch.raw_record(schema, record)
        assert err.value.details["reason"] == "out_of_range" and err.value.details["column"] == "amount"


@settings(max_examples=40, deadline=None)
@given(codes, st.text(min_size=1, max_size=8), st.booleans())
def test_unknown_and_missing_fields_are_refused(cats: list[str], extra: str, drop: bool) -> None:
    schema = _schema(cats, 0.0, 10.0, "onehot")
    record: dict[str, Any] = {"town": cats[0], "amount": 5}
    if drop:
        del record["amount"]
        reason = "missing_field"
    else:
        if extra in ("town", "town_code", "amount"):
            return
        record[extra] = 1
        reason = "unknown_field"
    with pytest.raises(ValidationFailed) as err:
        sch.raw_record(schema, record)
    assert err.value.details["reason"] == reason


@given(codes)
def test_unknown_category_lists_the_allowed_names(cats: list[str]) -> None:
    schema = _schema(cats, 0.0, 10.0, "raw")
    with pytest.raises(ValidationFailed) as err:
        sch.raw_record(schema, {"town": "不存在镇", "amount": 1})
    assert err.value.details["allowed"] == [f"第{c}镇" for c in cats]
    assert f"第{cats[0]}镇" in err.value.message_zh and math.isfinite(len(err.value.message_en))


def test_table_preview_flags_the_cells_the_checks_name() -> None:
    """The review page marks the cells a check names (line + column), and whole rows."""
    from countylab.web.ui.airlock_pages import flag_cells

    rows = [
        {"number": 1, "cells": ["village", "residents"]},
        {"number": 2, "cells": ["青禾村", "40"]},
        {"number": 3, "cells": ["东岭村", "12"]},
    ]
    checks = [
        {
            "check": "table_sdc",
            "status": "warn",
            "details": {"cells": [{"line": 3, "column": "residents", "rule": "dominance"}]},
        },
        {"check": "leakage_scan", "status": "warn", "details": {"cells": [{"line": 2, "rule": "rare"}]}},
        {
            "check": "pii_scan",
            "status": "pass",
            "details": {"cells": [{"line": 2, "column": "village", "rule": "x"}]},
        },
    ]
    out = flag_cells(rows, checks)
    assert out[2]["flags"] == ["", "dominance"] and out[1]["flags"] == ["", ""]
    assert out[1]["row_flag"] == "rare" and out[2]["row_flag"] == ""
