"""Hypothesis: any table a department might upload profiles and generates without error, and
the generated rows keep the proposed profile (categories seen >= k times, scale, clock steps)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from countylab.dummy import MIN_CATEGORY_COUNT, generate, profile_from_table

ROWS = 120


@st.composite
def uploads(draw: st.DrawFn) -> pa.Table:
    n = ROWS
    nulls = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    words = draw(
        st.lists(
            st.sampled_from(["城关镇", "东河镇", "已核实", "西山乡", "甲", "乙"]), min_size=n, max_size=n
        )
    )
    places = draw(st.integers(0, 4))
    cents = draw(st.lists(st.integers(0, 10**7), min_size=n, max_size=n))
    start = draw(st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2030, 1, 1)))
    hourly = draw(st.booleans())
    stamps = [
        start.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=i)
        if hourly
        else start + dt.timedelta(seconds=i * draw(st.integers(1, 5000)) / 7)
        for i in range(n)
    ]
    tz = draw(st.sampled_from([None, "Asia/Shanghai"]))
    return pa.table(
        {
            "word": pa.array([None if z else w for z, w in zip(nulls, words, strict=True)], pa.string()),
            "amount": pa.array([c / 10**places for c in cents], pa.float64()),
            "money": pa.array([Decimal(c) / 100 for c in cents], pa.decimal128(12, 2)),
            "count": pa.array([None if z else c % 50 for z, c in zip(nulls, cents, strict=True)], pa.int32()),
            "day": pa.array([start.date() + dt.timedelta(days=c % 400) for c in cents], pa.date32()),
            "at": pa.array(stamps, pa.timestamp("us", tz=tz)),
            "flag": pa.array([c % 3 == 0 for c in cents], pa.bool_()),
        }
    )


@settings(max_examples=40, deadline=None)
@given(uploads(), st.integers(0, 2**32))
def test_any_upload_profiles_and_generates_within_its_profile(table: pa.Table, seed: int) -> None:
    profile = profile_from_table(
        table,
        semantics={},
        public_key_sets={},
        sensitive_columns=set(),
        name="upload",
        as_of=dt.date(2031, 1, 1),
    )
    counts = Counter(v for v in table.column("word").to_pylist() if v is not None)
    word = profile.column("word")
    if word.categories is not None:
        assert all(counts[c] >= MIN_CATEGORY_COUNT for c in word.categories)
    assert profile.column("money").scale == 2
    out = generate(profile, 300, seed=seed)
    assert out.schema.names == table.schema.names
    data = out.to_pydict()
    if word.categories is not None:
        assert set(v for v in data["word"] if v is not None) <= set(word.categories)
    for name in ("amount", "money"):
        scale = profile.column(name).scale
        if scale is not None:
            assert all(round(v, scale) == v for v in data[name] if v is not None)
    step = profile.column("at").step_seconds
    if step:
        assert all(int(v.timestamp()) % step == 0 for v in data["at"] if v is not None)
