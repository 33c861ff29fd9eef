"""The warm path's caches keep every guarantee (issue 9, "Performance, measured fairly").

Plans, parsed models and checked OpenDP measurements are reused across queries; these tests
pin that reuse never changes an answer's meaning: a plan is reused only for the same text over
the same table metadata, settings, ε and δ; refusals are never cached; every release still
draws fresh noise; the planner sums the prepared row integers and gets the same exact sums.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from countylab.errors import ValidationFailed
from countylab.privacy import mechanisms
from countylab.privacy.engine import DPEngine
from countylab.privacy.spec import ColumnKind, ColumnPolicy, EngineSettings, SandboxLimits

from .conftest import households_spec, residents_spec

SQL = "SELECT town, count(*), sum(income), avg(age), var_samp(income) FROM residents GROUP BY town"


def _engine(*specs, **kw) -> DPEngine:  # type: ignore[no-untyped-def]
    limits = SandboxLimits(memory_limit="512MB", threads=1, timeout_s=10.0)
    return DPEngine(list(specs), EngineSettings(limits=limits, time_bucket_s=0.0, **kw))


def test_a_repeated_question_reuses_its_plan_and_gets_fresh_noise(data_dir: Path) -> None:
    eng = _engine(residents_spec(data_dir / "residents.parquet"))
    try:
        a, b = eng.plan(SQL, 1.0), eng.plan(SQL, 1.0)
        assert a is b
        answers = {tuple(eng.execute(a).rows[0][1:]) for _ in range(4)}
        assert len(answers) > 1  # the noise is drawn afresh on every release
        assert eng.plan(SQL, 0.5) is not a and eng.plan(SQL, 0.5).cost == (0.5, 0.0)
    finally:
        eng.close()


def test_changed_metadata_never_hits_an_old_plan(data_dir: Path) -> None:
    spec = residents_spec(data_dir / "residents.parquet")
    base = _engine(spec).plan(SQL, 1.0)
    cols = dict(spec.columns)
    cols["income"] = ColumnPolicy(ColumnKind.NUMERIC, 0.0, 100_000.0)  # the steward narrows a bound
    narrowed = _engine(dataclasses.replace(spec, columns=cols)).plan(SQL, 1.0)
    heavier = _engine(dataclasses.replace(spec, max_rows_per_unit=3)).plan(SQL, 1.0)
    newer = _engine(dataclasses.replace(spec, version="v2")).plan(SQL, 1.0)
    assert len({base.fingerprint, narrowed.fingerprint, heavier.fingerprint, newer.fingerprint}) == 4
    sums = [next(m for m in p.measurements if m.kind == "sum") for p in (narrowed, base, heavier)]
    sens = [m.sensitivity * m.fixed.unit for m in sums if m.fixed is not None]  # in real units
    assert sens[0] < sens[1] < sens[2]
    assert heavier.model.contribution == 3 and base.model.contribution == 1
    # a table granted or withdrawn changes the key too
    with pytest.raises(ValidationFailed):
        _engine(households_spec(data_dir / "households.parquet")).plan(SQL, 1.0)


def test_refusals_are_never_cached(data_dir: Path) -> None:
    eng = _engine(residents_spec(data_dir / "residents.parquet"))
    for _ in range(2):
        with pytest.raises(ValidationFailed):
            eng.plan("SELECT id_number, count(*) FROM residents GROUP BY id_number", 1.0)
        with pytest.raises(ValidationFailed):
            eng.plan(SQL, 0.0)
        with pytest.raises(ValidationFailed):
            eng.plan(SQL, float("nan"))
    assert eng.plan(SQL, 1.0).cost == (1.0, 0.0)


def test_the_planner_sums_prepared_row_integers_with_the_same_exact_results(data_dir: Path) -> None:
    res = residents_spec(data_dir / "heavy.parquet", k=3)
    hh = households_spec(data_dir / "households.parquet")
    stored, computed = _engine(res, hh), _engine(res, hh, integer_columns=False)
    sqls = [
        SQL,
        "SELECT village, sum(age), stddev_pop(income), avg(income) FROM residents WHERE age > 30 "
        "GROUP BY village",
        "SELECT h.hsize, sum(r.income), var_pop(r.age) FROM residents r JOIN households h ON r.hid = h.hid "
        "GROUP BY h.hsize",
    ]
    try:
        for sql in sqls:
            a, b = stored.plan(sql, 1.0), computed.plan(sql, 1.0)
            assert "__i_" in a.main_sql and "__i_" not in b.main_sql
            assert "round(" not in a.main_sql and "* 2.0" not in a.main_sql  # no per-row encoding
            ra = stored.runner.run(list(a.model.tables), [a.main_sql])[0]
            rb = computed.runner.run(list(b.model.tables), [b.main_sql])[0]
            assert sorted(ra, key=str) == sorted(rb, key=str)
            assert a.fingerprint == b.fingerprint  # the same question, the same cached answer
    finally:
        stored.close()
        computed.close()


def test_cached_measurements_keep_their_scale_and_draw_fresh_noise() -> None:
    zeros = [0] * 200
    a, scale_a = mechanisms.laplace_ints(zeros, 3, 0.5)
    b, scale_b = mechanisms.laplace_ints(zeros, 3, 0.5)
    assert a != b and scale_a == scale_b and scale_a == pytest.approx(6.0, rel=1e-5)
    _, scale_c = mechanisms.laplace_ints(zeros, 3, 1.0)
    assert scale_c == pytest.approx(3.0, rel=1e-5)
    with pytest.raises(ValueError):
        mechanisms.laplace_ints(zeros, 2.5, 1.0)  # type: ignore[arg-type]
    counts = {str(i): 1000 for i in range(50)}
    r1, s1, t1 = mechanisms.threshold_counts(counts, 2, 0.5, 1e-7)
    r2, s2, t2 = mechanisms.threshold_counts(counts, 2, 0.5, 1e-7)
    assert (s1, t1) == (s2, t2) and r1 != r2
    _, _, t3 = mechanisms.threshold_counts(counts, 2, 0.5, 1e-9)
    assert t3 > t1  # a smaller δ, a higher threshold: the cache key holds δ
