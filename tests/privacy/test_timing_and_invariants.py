"""Timing defence and generative invariants (budget, bounds)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from countylab.privacy.engine import DPEngine

from .conftest import engine_for, residents_spec

BUCKET = 0.25


def _observed(eng: DPEngine, sql: str) -> float:
    plan = eng.plan(sql, 1.0)
    t = time.monotonic()
    eng.execute(plan)
    return time.monotonic() - t


def test_timing_probe_sees_only_buckets(data_dir: Path) -> None:
    eng = engine_for(residents_spec(data_dir / "residents.parquet"), bucket=BUCKET)
    fast = _observed(eng, "SELECT count(*) FROM residents WHERE pid = 3")
    slow = _observed(
        eng,
        "SELECT village, count(*), median(income), quantile_cont(age, 0.3), stddev(income) "
        "FROM residents WHERE income > 0 GROUP BY village",
    )
    for t in (fast, slow):
        assert t >= BUCKET
        assert (t % BUCKET) < 0.04 or BUCKET - (t % BUCKET) < 0.01
    assert abs(fast - slow) < 0.04  # both queries land in the same bucket


def test_errors_are_padded_too(tmp_path: Path) -> None:
    eng = engine_for(residents_spec(tmp_path / "missing.parquet"), bucket=BUCKET)
    plan = eng.plan("SELECT count(*) FROM residents", 1.0)
    t = time.monotonic()
    with contextlib.suppress(Exception):
        eng.execute(plan)
    assert time.monotonic() - t >= BUCKET


@settings(max_examples=25, deadline=None)
@given(eps=st.floats(0.01, 10.0), lo_age=st.integers(0, 99))
def test_cost_is_exact_and_released_means_respect_bounds(engine: DPEngine, eps: float, lo_age: int) -> None:
    plan = engine.plan(
        f"SELECT town, avg(income), stddev(age), count(*) FROM residents WHERE age >= {lo_age} GROUP BY town",
        eps,
    )
    assert plan.cost == (eps, 0.0)
    assert abs(sum(m.epsilon for m in plan.measurements) - eps) < 1e-12  # never overspent
    res = engine.execute(plan)
    for row, ints in zip(res.rows, res.intervals, strict=True):
        assert 0.0 <= row[1] <= 200_000.0 and 0.0 <= row[2] <= 50.0 and row[3] >= 0
        for ci in ints[1:]:
            assert ci is not None and ci[0] <= ci[1]
