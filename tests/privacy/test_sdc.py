"""SDC rules as pure functions and through the engine's exact path."""

from __future__ import annotations

import pandas as pd
import pytest

from countylab.errors import ValidationFailed
from countylab.privacy import sdc
from countylab.privacy.engine import DPEngine

RULES = sdc.SdcRules()


def test_threshold_rule() -> None:
    assert sdc.check_frequency(sdc.cell_stats([1.0] * 9), RULES) == [sdc.THRESHOLD]
    assert sdc.check_frequency(sdc.cell_stats([1.0] * 10), RULES) == []


def test_p_percent_and_dominance() -> None:
    even = sdc.cell_stats([100.0] * 12)
    assert sdc.check_magnitude(even, RULES) == []
    one_big = sdc.cell_stats([10_000.0] + [10.0] * 11)
    assert set(sdc.check_magnitude(one_big, RULES)) == {sdc.P_PERCENT, sdc.DOMINANCE}
    two_big = sdc.cell_stats([5000.0, 4800.0] + [100.0] * 10)  # top-2 hold 91%; rest is 10% of top
    assert sdc.DOMINANCE in sdc.check_magnitude(two_big, RULES)
    assert sdc.P_PERCENT not in sdc.check_magnitude(two_big, RULES)


def test_engine_sdc_releases_exact_cells_and_suppresses_rare_ones(
    engine: DPEngine, residents_df: pd.DataFrame
) -> None:
    res = engine.execute_sdc(
        "SELECT village, count(*) AS n, sum(income) AS s FROM residents GROUP BY village"
    )
    assert res.epsilon_spent == 0.0
    got = {r[0]: r for r in res.rows}
    ref = residents_df.groupby("village").agg(n=("pid", "size"), s=("income", "sum"))
    for v in ("v0", "v1", "v2"):
        assert got[v][1] == ref.loc[v, "n"]
        assert got[v][2] == pytest.approx(ref.loc[v, "s"])
    assert got["rare"][1:] == (None, None)
    reasons = {(tuple(s["row"]), s["column"]): s["reasons"] for s in res.suppressed}
    assert reasons[(("rare",), "n")] == [sdc.THRESHOLD]


def test_engine_sdc_dominance_on_outlier(engine: DPEngine) -> None:
    res = engine.execute_sdc("SELECT count(*) AS n, sum(income) AS s FROM residents WHERE pid < 30")
    n, s = res.rows[0]
    assert n == 30 and s is None  # pid 1 earns 9,000,000: the sum would reveal it
    assert set(res.suppressed[0]["reasons"]) >= {sdc.DOMINANCE, sdc.P_PERCENT}


def test_engine_sdc_refuses_noisy_only_aggregates(engine: DPEngine) -> None:
    with pytest.raises(ValidationFailed):
        engine.execute_sdc("SELECT median(income) FROM residents")
