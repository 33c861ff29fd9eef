"""Invariants over arbitrary numeric and date profiles (Hypothesis)."""

from __future__ import annotations

import datetime as dt

import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from countylab.dummy import ColumnProfile, DatasetProfile, generate
from countylab.errors import ValidationFailed

ROWS = 400


@st.composite
def numeric_columns(draw: st.DrawFn) -> ColumnProfile:
    kind = draw(st.sampled_from(["int64", "float64"]))
    low = draw(st.floats(-1e6, 1e6, allow_nan=False))
    high = low + draw(st.floats(0, 1e6, allow_nan=False))
    mean = draw(st.none() | st.floats(low, high, allow_nan=False))
    distribution = draw(st.sampled_from([None, "uniform", "normal", "lognormal"]))
    if distribution == "lognormal" and (mean is None or mean <= low):
        distribution = None
    return ColumnProfile(
        "x",
        kind,
        "measure",
        null_rate=draw(st.floats(0, 1)),
        minimum=low,
        maximum=high,
        mean=mean,
        distribution=distribution,
    )


@settings(max_examples=60, deadline=None)
@given(numeric_columns(), st.integers(0, 2**32))
def test_numbers_always_inside_bounds_with_exact_null_count(col: ColumnProfile, seed: int) -> None:
    table = generate(DatasetProfile("t", [col]), ROWS, seed=seed)
    values = table.column("x")
    assert values.null_count == round(col.null_rate * ROWS)
    if values.null_count < ROWS:
        assert col.minimum is not None and col.maximum is not None
        low, high = float(col.minimum), float(col.maximum)
        if col.type == "int64":  # integers round into the range, or to its nearest integer
            low, high = min(round(low), int(-(-low // 1))), max(round(high), int(high // 1))
        assert low - 1e-9 <= pc.min(values).as_py() and pc.max(values).as_py() <= high + 1e-9


@settings(max_examples=40, deadline=None)
@given(st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)), st.integers(0, 4000), st.booleans())
def test_dates_inside_range_and_unique_when_asked(start: dt.date, span: int, unique: bool) -> None:
    end = start + dt.timedelta(days=span)
    col = ColumnProfile(
        "d", "date", "date", minimum=start.isoformat(), maximum=end.isoformat(), unique=unique
    )
    profile = DatasetProfile("t", [col])
    if unique and span + 1 < ROWS:
        with pytest.raises(ValidationFailed):
            generate(profile, ROWS)
        return
    values = generate(profile, ROWS).column("d")
    assert start <= pc.min(values).as_py() and pc.max(values).as_py() <= end
    if unique:
        assert pc.count_distinct(values).as_py() == ROWS
