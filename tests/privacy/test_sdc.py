"""SDC cell rules as pure functions (the airlock applies them to exact tables from jobs)."""

from __future__ import annotations

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


def test_the_engine_has_no_exact_path() -> None:
    """Interactive exact answers are gone (issue 9, option b): these rules serve the airlock only."""
    assert not hasattr(DPEngine, "execute_sdc") and not hasattr(DPEngine, "_sdc")
