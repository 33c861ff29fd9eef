"""Fixed-point encoding of clamped values, so that sums are exact integer sums.

Why: a floating-point sum is not the real sum.  Its rounding depends on the order and the
magnitude of every other row, and an adversary can choose rows for which adding or removing
one unit moves the float sum by more than the nominal sensitivity (Mironov 2012; Casacuberta
et al. 2022, "Widespread underestimation of sensitivity in differentially private libraries").
The Laplace proof then no longer covers the release.

So each clamped value ``v`` in ``[lo, hi]`` becomes the integer ``round(v / q) - C``:

* ``q`` is a power of two chosen from the bounds (division by it is exact in binary floating
  point) so that the bound spans about 2^20 quanta: a relative resolution of about 1e-6;
* ``C`` is a fixed integer centre for centred sums (AVG, VAR) and 0 for plain SUM;
* every row's integer is a deterministic function of that row alone and lies in
  ``[-max_abs, max_abs]``, a bound computed here from the bounds, not from the data;
* DuckDB adds the integers exactly (``sum`` of INTEGER or BIGINT is a HUGEINT), and OpenDP adds
  integer noise with sensitivity ``k · max_abs``, so the proof covers exactly what is released.

Squared deviations (for VAR/STDDEV) use a coarser quantum (2^15 per bound width), so the
square of one row stays below 2^32 and a sum over 2^31 rows still fits the 64-bit integers
OpenDP's noise works on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SUM_BITS = 20
SQ_BITS = 15
_I64_SAFE = 2**62


def _pow2_at_least(x: float) -> int:
    """Exponent ``e`` with ``x <= 2**e`` (``x > 0``)."""
    e = math.frexp(x)[1]
    return max(-1000, min(1000, e))


def center_of(bounds: tuple[float, float]) -> float:
    """The fixed centre of centred sums: the midpoint rounded to the squared-sum quantum."""
    lo, hi = bounds
    qc = 2.0 ** (_pow2_at_least(hi - lo) - SQ_BITS)
    return round((lo + hi) / 2.0 / qc) * qc


@dataclass(frozen=True)
class FixedPoint:
    quantum: float  # a power of two
    center_units: int  # C, the centre in quanta (0 for plain sums)
    squared: bool
    max_abs: int  # the largest |row integer|, from the bounds

    @property
    def center(self) -> float:
        return self.center_units * self.quantum

    @property
    def unit(self) -> float:
        """Real value of one integer unit of the sum."""
        return self.quantum * self.quantum if self.squared else self.quantum

    def row_sql(self, value_sql: str) -> str:
        """DuckDB integer expression of one row (``value_sql`` is clamped, never NULL).

        ``CAST(DOUBLE AS INTEGER)`` rounds to the nearest integer; with the centre subtracted
        in floating point first, the value fits an INTEGER (cheaper to sum than BIGINT).
        """
        x = f"{value_sql} * {1.0 / self.quantum!r}"
        if self.center_units:
            x = f"{x} - {float(self.center_units)!r}"
        if self.squared:
            return f"(CAST({x} AS BIGINT) * CAST({x} AS BIGINT))"
        return f"CAST({x} AS INTEGER)"

    def decode(self, total: int | float | None) -> float:
        """The real-valued sum of an integer total, clipped into the range OpenDP's i64 noise takes."""
        t = max(-_I64_SAFE, min(_I64_SAFE, int(total or 0)))
        return t * self.unit

    def clip_total(self, total: int | float | None) -> int:
        """The integer total as OpenDP takes it (clipping a total is 1-Lipschitz: no extra cost)."""
        return max(-_I64_SAFE, min(_I64_SAFE, int(total or 0)))


def fixed_point(bounds: tuple[float, float], *, squared: bool, centered: bool) -> FixedPoint:
    lo, hi = bounds
    if squared or centered:
        bits = SQ_BITS if squared else SUM_BITS
        q = 2.0 ** (_pow2_at_least(hi - lo) - bits)
        center = round(center_of(bounds) / q)
    else:
        q = 2.0 ** (_pow2_at_least(max(abs(lo), abs(hi))) - SUM_BITS)
        center = 0
    # The same floating-point steps as ``row_sql`` (v · 2^-e is exact; one correctly rounded
    # subtraction), all monotone, then rounding to an integer: every row lies in
    # [floor(lo·inv − C), ceil(hi·inv − C)], whatever the rows are.
    inv, c = 1.0 / q, float(center)
    span = max(abs(math.ceil(hi * inv - c)), abs(math.floor(lo * inv - c)))
    assert span < 2**30, "fixed-point span must fit a 32-bit integer"
    return FixedPoint(q, int(center), squared, span * span if squared else span)
