"""Statistical disclosure control rules for exact tables leaving through the airlock.

There is no interactive SDC mode any more (issue 9, option b): an exact-answer oracle leaks
individuals by differencing unless every defence is perfect, so exact tables are computed in
sandbox jobs and checked here — automatically — before a human checker reviews them.  Pure
functions over per-cell statistics of unit contributions.  A cell passes only when every rule
passes:

* threshold: at least ``min_units`` distinct privacy units contribute;
* p% rule (magnitude cells): the total minus the two largest contributions must be at least
  p% of the largest, otherwise the second-largest contributor could estimate the largest to
  within p%;
* (n, k) dominance (magnitude cells): the ``n`` largest contributors must hold at most k% of
  the total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

THRESHOLD = "threshold"
P_PERCENT = "p_percent"
DOMINANCE = "nk_dominance"


@dataclass(frozen=True)
class SdcRules:
    min_units: int = 10
    p_percent: float = 10.0
    nk_n: int = 2
    nk_k: float = 85.0


@dataclass(frozen=True)
class CellStats:
    """A cell's contributors: unit count, total of |contribution| and the largest ones, descending."""

    n_units: int
    total: float
    top: tuple[float, ...] = ()


def cell_stats(contributions: Sequence[float], keep: int = 2) -> CellStats:
    """Statistics of one cell from the per-unit contributions (one value per unit)."""
    mags = sorted((abs(float(c)) for c in contributions), reverse=True)
    return CellStats(len(mags), sum(mags), tuple(mags[: max(keep, 2)]))


def check_frequency(stats: CellStats, rules: SdcRules) -> list[str]:
    """Reasons a count cell must be suppressed (empty list: release it)."""
    return [THRESHOLD] if stats.n_units < rules.min_units else []


def check_magnitude(stats: CellStats, rules: SdcRules) -> list[str]:
    """Reasons a sum/mean cell must be suppressed (empty list: release it)."""
    reasons = check_frequency(stats, rules)
    top = list(stats.top) + [0.0, 0.0]
    x1, x2 = top[0], top[1]
    if stats.total - x1 - x2 < rules.p_percent / 100.0 * x1:
        reasons.append(P_PERCENT)
    if (
        stats.total > 0
        and sum(sorted(stats.top, reverse=True)[: rules.nk_n]) > rules.nk_k / 100.0 * stats.total
    ):
        reasons.append(DOMINANCE)
    return reasons
