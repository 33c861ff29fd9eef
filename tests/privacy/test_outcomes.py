"""After-charge failures look alike; group caps come from metadata; quantile-only queries work.

The visible outcome of ``execute`` is an answer or one ``QueryFailed`` with one fixed message,
whatever failed inside.  Partition selection never fails for having many groups: it releases at
most ``max_result_rows`` keys by their noisy counts, and reads more groups than one transfer
holds in pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from countylab.errors import BugError, TooLarge, UserError
from countylab.privacy.engine import DPEngine
from countylab.privacy.result import QueryFailed
from countylab.privacy.sandboxed_duckdb import QueryTimeout
from countylab.privacy.spec import EngineSettings, TableSpec

from .conftest import TOWNS, households_spec, residents_spec
from .layout import engine_for

HIGH = 100.0


class FailingRunner:
    """A hand-written fake runner that fails the way a real one can."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def run(self, specs: Sequence[TableSpec], sqls: Sequence[str], *, bounded: bool) -> list[Any]:
        raise self.exc

    def close(self) -> None:
        pass


FAILURES = [
    duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate 12345 bytes for row 42"),
    duckdb.ConversionException("Could not convert string '330102199001011234' to INT32"),
    duckdb.InterruptException("INTERRUPT"),
    QueryTimeout("查询超时", "query ran past the time limit", timeout_s=30),
    UserError("查询执行失败", "query failed", reason="BinderException"),
    TooLarge("结果行数超过上限", "result has too many rows", max_rows=3),
    BugError("查询引擎内部错误", "query engine failed"),
    MemoryError(),
    RuntimeError("worker died at row 7"),
    EOFError(),
]


@pytest.mark.parametrize("exc", FAILURES, ids=lambda e: type(e).__name__)
def test_every_failure_after_the_charge_is_one_type_with_one_message(
    data_dir: Path, exc: BaseException
) -> None:
    spec = residents_spec(data_dir / "residents.parquet")
    eng = DPEngine([spec], EngineSettings(time_bucket_s=0.0), runner=FailingRunner(exc))
    plan = eng.plan("SELECT town, count(*) FROM residents GROUP BY town", 1.0)
    with pytest.raises(QueryFailed) as info:
        eng.execute(plan)
    reference = QueryFailed()
    got = info.value
    assert (got.code, got.message_zh, got.message_en, got.details) == (
        reference.code,
        reference.message_zh,
        reference.message_en,
        {},
    )
    assert got.__cause__ is exc  # kept for the server log, never shown


def test_a_real_engine_error_is_a_query_failed(data_dir: Path) -> None:
    # round(DOUBLE, BIGINT) does not bind in DuckDB: a failure of the query text and the schema
    # (not of the rows), which DuckDB reports only when the query runs.
    eng = engine_for(residents_spec(data_dir / "residents.parquet"))
    with pytest.raises(QueryFailed) as info:
        eng.execute(eng.plan("SELECT count(*) FROM residents WHERE round(income, age) > 0", 1.0))
    assert isinstance(info.value.__cause__, Exception)


# -- group caps --------------------------------------------------------------------------------


def test_public_key_sets_larger_than_the_cap_are_refused_from_metadata_alone(tmp_path: Path) -> None:
    # The data file does not even exist: the refusal cannot depend on rows.
    eng = engine_for(residents_spec(tmp_path / "missing.parquet"), max_rows=3)
    with pytest.raises(TooLarge):
        eng.plan("SELECT town, count(*) FROM residents GROUP BY town", 1.0)


def test_partition_selection_releases_at_most_max_rows_keys_by_noisy_count(
    data_dir: Path, residents_df: pd.DataFrame
) -> None:
    eng = engine_for(residents_spec(data_dir / "residents.parquet"), max_rows=2)
    plan = eng.plan("SELECT village, count(*) FROM residents GROUP BY village", HIGH)
    rows = eng.execute(plan).rows  # never "too large", however many groups the data has
    top2 = set(residents_df.village.value_counts().head(2).index)
    assert {r[0] for r in rows} == top2
    assert len(rows) == 2


def test_many_internal_groups_are_read_in_pages_never_refused(data_dir: Path) -> None:
    sql = "SELECT age, count(*), median(income) FROM residents GROUP BY age"
    answers = []
    for cap in (7, 1_000_000):
        eng = engine_for(residents_spec(data_dir / "residents.parquet"), max_internal_groups=cap)
        answers.append(eng.execute(eng.plan(sql, HIGH)).rows)
    paged, whole = answers
    assert len(paged) == len(whole) > 7 * 3  # many pages
    assert [r[0] for r in paged] == [r[0] for r in whole]
    for p, w in zip(paged, whole, strict=True):
        assert abs(p[1] - w[1]) <= 3


# -- quantile-only queries -----------------------------------------------------------------------


def test_quantile_only_query_is_answered_without_an_extra_scan(
    engine: DPEngine, residents_df: pd.DataFrame
) -> None:
    plan = engine.plan("SELECT median(income) FROM residents", HIGH)
    assert plan.main_sql == "" and len(plan.hist_sqls) == 1
    (row,) = engine.execute(plan).rows
    assert row[0] == pytest.approx(residents_df.income.clip(0, 200_000).median(), rel=0.1)


def test_grouped_quantile_only_queries_with_public_and_private_keys(
    engine: DPEngine, residents_df: pd.DataFrame
) -> None:
    res = engine.execute(engine.plan("SELECT town, median(age) AS m FROM residents GROUP BY town", HIGH))
    got = dict(res.rows)
    assert set(got) == set(TOWNS)  # every public key, even 北坡乡 with no rows
    for town, m in residents_df.groupby("town").age.median().items():
        assert got[town] == pytest.approx(m, abs=4.0)
    res = engine.execute(
        engine.plan("SELECT village, quantile_cont(age, 0.25) AS q FROM residents GROUP BY village", 4.0)
    )
    got = dict(res.rows)
    assert set(got) == {"v0", "v1", "v2"}  # partition selection still hides the rare village
    for village, q in (
        residents_df[residents_df.village != "rare"].groupby("village").age.quantile(0.25).items()
    ):
        assert got[village] == pytest.approx(q, abs=4.0)


def test_quantile_over_a_join_and_a_filter(data_dir: Path, residents_df: pd.DataFrame) -> None:
    eng = engine_for(
        residents_spec(data_dir / "residents.parquet"), households_spec(data_dir / "households.parquet")
    )
    res = eng.execute(
        eng.plan(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY r.age) AS m FROM residents r "
            "JOIN households h ON r.hid = h.hid WHERE h.hsize >= 3",
            HIGH,
        )
    )
    hh = pd.read_parquet(data_dir / "households.parquet").drop_duplicates("hid")
    ref = residents_df.merge(hh, on="hid").query("hsize >= 3").age.median()
    assert res.rows[0][0] == pytest.approx(ref, abs=4.0)
