"""Sums the proof covers: clamped values as integers, summed exactly, integer noise.

Invariants (Hypothesis): every row's integer lies within the bound the sensitivity is computed
from; the integer sum does not depend on the order of the rows (a float sum does); decoding
recovers the real sum to within half a quantum per row; removing one unit's k rows moves the
integer sum by at most the sensitivity.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from countylab.errors import ValidationFailed
from countylab.privacy.engine import DPEngine
from countylab.privacy.fixedpoint import center_of, fixed_point, row_int_sql
from countylab.privacy.mechanisms import laplace_ints

from .conftest import households_spec, residents_spec
from .layout import engine_for

magnitudes = st.sampled_from([1e-3, 1.0, 100.0, 2e5, 1e9, 1e15])


@st.composite
def bounds_and_values(draw: st.DrawFn) -> tuple[tuple[float, float], list[float]]:
    scale = draw(magnitudes)
    lo = draw(st.floats(-2.0, 1.0)) * scale
    hi = lo + draw(st.floats(1e-3, 3.0)) * scale
    assume(lo < hi)
    inner = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    values = draw(st.lists(st.one_of(inner, st.sampled_from([lo, hi])), min_size=1, max_size=60))
    return (lo, hi), values


def _row_ints(sql_of: str, values: list[float]) -> list[int]:
    con = duckdb.connect()
    con.execute("CREATE TABLE v (c DOUBLE)")
    con.executemany("INSERT INTO v VALUES (?)", [[x] for x in values])
    return [int(r[0]) for r in con.execute(f"SELECT {sql_of} FROM v").fetchall()]


@settings(max_examples=80, deadline=None)
@given(bv=bounds_and_values(), kind=st.sampled_from(["plain", "centred", "squared"]))
def test_every_row_integer_is_within_the_bound_the_sensitivity_uses(
    bv: tuple[tuple[float, float], list[float]], kind: str
) -> None:
    bounds, values = bv
    fx = fixed_point(bounds, squared=kind == "squared", centered=kind != "plain")
    assert math.frexp(fx.quantum)[0] == 0.5  # a power of two: v / q is exact
    limit = {"plain": 2**31 - 1, "centred": 2**19 + 1, "squared": (2**14 + 1) ** 2}[kind]
    assert fx.max_abs <= limit
    ints = _row_ints(fx.row_sql(row_int_sql("c", bounds)), values)
    assert all(abs(i) <= fx.max_abs for i in ints)
    if kind != "squared":  # decoding is accurate to half a quantum per row
        real = sum(values) - (fx.center * len(values))
        assert (
            abs(fx.decode(sum(ints)) - real) <= len(values) * fx.quantum / 2 * (1 + 1e-9) + abs(real) * 1e-12
        )


@settings(max_examples=30, deadline=None)
@given(bv=bounds_and_values(), seed=st.integers(0, 2**32))
def test_the_integer_sum_does_not_depend_on_row_order(
    bv: tuple[tuple[float, float], list[float]], seed: int
) -> None:
    bounds, values = bv
    fx = fixed_point(bounds, squared=False, centered=True)
    shuffled = values[:]
    random.Random(seed).shuffle(shuffled)
    row = fx.row_sql(row_int_sql("c", bounds))
    assert sum(_row_ints(row, values)) == sum(_row_ints(row, shuffled))


def test_float_sums_do_depend_on_row_order_which_is_why_they_are_not_used() -> None:
    values = [1e16, 1.0, -1e16, 1.0] * 50
    assert sum(values) != sum(sorted(values))  # the same multiset, two different float sums
    fx = fixed_point((-1e16, 1e16), squared=False, centered=False)
    row = fx.row_sql(row_int_sql("c", (-1e16, 1e16)))
    assert sum(_row_ints(row, values)) == sum(_row_ints(row, sorted(values)))


@settings(max_examples=40, deadline=None)
@given(bv=bounds_and_values(), k=st.integers(1, 5), data=st.data())
def test_removing_one_units_rows_moves_the_sum_by_at_most_the_sensitivity(
    bv: tuple[tuple[float, float], list[float]], k: int, data: st.DataObject
) -> None:
    bounds, values = bv
    unit_rows = data.draw(st.lists(st.sampled_from(values), min_size=1, max_size=k))
    for kind in ("plain", "centred", "squared"):
        fx = fixed_point(bounds, squared=kind == "squared", centered=kind != "plain")
        row = fx.row_sql(row_int_sql("c", bounds))
        with_ = sum(_row_ints(row, values + unit_rows))
        without = sum(_row_ints(row, values))
        assert abs(with_ - without) <= k * fx.max_abs


def test_centred_sums_and_squares_share_one_centre() -> None:
    for b in [(0.0, 200_000.0), (-3.7, 12.1), (1e6, 1e6 + 1), (-1e-3, 0.0)]:
        c = center_of(b)
        assert b[0] <= c <= b[1]
        for squared in (False, True):
            assert fixed_point(b, squared=squared, centered=True).center == c
        assert fixed_point(b, squared=False, centered=False).center == 0.0


def test_integer_noise_is_integer_and_scaled_back(engine: DPEngine, residents_df: pd.DataFrame) -> None:
    plan = engine.plan("SELECT sum(income) AS s FROM residents", 1.0)
    (m,) = plan.measurements
    assert m.fixed is not None and m.sensitivity == m.fixed.max_abs  # k = 1
    noisy, scale = laplace_ints([0] * 200, int(m.sensitivity), m.epsilon)
    assert all(isinstance(v, int) for v in noisy) and scale >= m.sensitivity / m.epsilon
    values = [engine.execute(plan).rows[0][0] for _ in range(5)]
    for v in values:  # every release is a multiple of the quantum
        assert (v / m.fixed.quantum) == pytest.approx(round(v / m.fixed.quantum), abs=1e-6)
    ref = residents_df.income.clip(0, 200_000).sum()
    assert abs(sum(values) / len(values) - ref) < 10 * scale * m.fixed.quantum


def test_sums_means_and_variance_match_the_reference(engine: DPEngine, residents_df: pd.DataFrame) -> None:
    res = engine.execute(
        engine.plan(
            "SELECT sum(age) AS s, avg(age) AS a, var_pop(age) AS v FROM residents WHERE age < 50", 100.0
        )
    )
    sub = residents_df[residents_df.age < 50].age
    s, a, v = res.rows[0]
    assert s == pytest.approx(sub.sum(), abs=50)
    assert a == pytest.approx(sub.mean(), abs=0.1)
    assert v == pytest.approx(sub.var(ddof=0), rel=0.01)


def test_precomputed_row_integers_give_the_same_exact_sums(data_dir: Path) -> None:
    """``integer_columns``: the planner reads ``__i_<col>`` instead of computing it per query."""
    spec = residents_spec(data_dir / "heavy.parquet", k=3)
    sqls = [
        "SELECT town, sum(income), avg(age), var_samp(income) FROM residents WHERE age > 20 GROUP BY town",
        "SELECT h.hsize, sum(r.income), stddev(r.age) FROM residents r JOIN households h "
        "ON r.hid = h.hid GROUP BY h.hsize",
    ]
    hh = households_spec(data_dir / "households.parquet")
    computed, stored = engine_for(spec, hh), engine_for(spec, hh, integer_columns=True)
    for sql in sqls:
        a, b = computed.plan(sql, 1.0), stored.plan(sql, 1.0)
        assert "__i_" in b.main_sql and "__i_" not in a.main_sql
        rows_a = computed.runner.run(list(a.model.tables), [a.main_sql], bounded=True)[0]
        rows_b = stored.runner.run(list(b.model.tables), [b.main_sql], bounded=True)[0]
        assert sorted(rows_a, key=str) == sorted(rows_b, key=str)
        assert stored.execute(b).columns == computed.execute(a).columns


@pytest.mark.parametrize(
    "bounds", [(-1.7e308, 1.7e308), (0.0, 1e-310), (1e15, 1e15 + 1), (-5e-324, 5e-324)], ids=str
)
def test_extreme_bounds_still_encode_within_32_bits(bounds: tuple[float, float]) -> None:
    lo, hi = bounds
    for squared, centered in ((False, False), (False, True), (True, True)):
        fx = fixed_point(bounds, squared=squared, centered=centered)
        ints = _row_ints(fx.row_sql(row_int_sql("c", bounds)), [lo, hi, lo / 2 + hi / 2])
        assert all(abs(i) <= fx.max_abs for i in ints)


def test_non_finite_bounds_are_refused_before_any_charge() -> None:
    with pytest.raises(ValidationFailed):
        fixed_point((0.0, float("inf")), squared=False, centered=False)
