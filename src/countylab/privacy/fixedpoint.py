"""Fixed-point encoding of clamped values, so that sums are exact integer sums.

Why: a floating-point sum is not the real sum.  Its rounding depends on the order and the
magnitude of every other row, and an adversary can choose rows for which adding or removing
one unit moves the float sum by more than the nominal sensitivity (Mironov 2012; Casacuberta
et al. 2022, "Widespread underestimation of sensitivity in differentially private libraries").
The Laplace proof then no longer covers the release.

So each clamped value ``v`` in ``[lo, hi]`` becomes one 32-bit integer, its *row integer*
``y = round(v / q - C)`` (``row_int_sql``):

* ``q`` is a power of two chosen from the bounds (``v / q`` is exact in binary floating point)
  so that the bounds' width spans about 2^20 quanta: a resolution of about 1e-6 of the width;
* ``C`` is a fixed integer centre near the bounds' midpoint, so ``|y| <= 2^19 + 1``;
* ``y`` is a deterministic function of that row alone, and its range ``[y_lo, y_hi]`` is
  computed here from the bounds, never from the data.

Every sum is an exact integer function of the row integers: a centred sum (AVG, VAR) is
``Σ y``, a plain SUM is ``Σ (y + C)``, and a squared deviation (VAR, STDDEV) is
``Σ (y // 32)²`` (a coarser quantum keeps one square below 2^30 and a sum over 2^32 rows within
the 64-bit integers OpenDP's noise takes).  DuckDB adds integers exactly (HUGEINT) in any order,
and OpenDP adds discrete Laplace noise with sensitivity ``k · max_abs`` in integer units, so the
proof covers exactly what is released.

Because ``y`` depends only on the value and the steward's bounds, the storage layer may compute
it once per row when a version is prepared (``row_int_sql`` over the clamped column, stored as
``__i_<col>``); ``EngineSettings.integer_columns`` tells the planner to read it from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from countylab.errors import ValidationFailed

WIDTH_BITS = 20  # quanta per bounds' width
VALUE_BITS = 30  # |y + C| stays below 2^31 even for bounds far from zero
SQ_SHIFT = 32  # squares use (y // 32): quantum 32·q
_I64_SAFE = 2**62

SumKind = Literal["plain", "centered", "squared"]


def _exp2_at_least(x: float) -> int:
    """Exponent ``e`` with ``x <= 2**e`` (``x > 0``)."""
    return math.frexp(x)[1]


def _trunc_div(a: int, b: int) -> int:
    """DuckDB's integer ``//`` (truncates toward zero)."""
    return -((-a) // b) if a < 0 else a // b


@dataclass(frozen=True)
class Encoding:
    """How one column's clamped values become row integers (a function of the bounds only)."""

    quantum: float  # a power of two
    center_units: int  # C
    y_lo: int  # every row integer lies in [y_lo, y_hi]
    y_hi: int

    @property
    def center(self) -> float:
        return self.center_units * self.quantum


def encoding(bounds: tuple[float, float]) -> Encoding:
    lo, hi = bounds
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValidationFailed(
            "数值列的截断上下界必须是有限数且下界小于上界",
            "clamping bounds must be finite numbers with lower < upper",
            reason="bounds",
        )
    half_width = hi / 2.0 - lo / 2.0  # finite even when hi - lo would overflow
    e = max(
        _exp2_at_least(half_width) + 1 - WIDTH_BITS,
        _exp2_at_least(max(abs(lo), abs(hi))) - VALUE_BITS,
        -1000,  # 1 / q stays finite
    )
    q = 2.0**e
    c = round((lo + hi) / 2.0 / q)
    # The same floating-point steps as row_int_sql (v · 2^-e is exact, then one correctly rounded
    # subtraction), each monotone, then rounding to an integer: rows lie within these bounds.
    inv, cf = 1.0 / q, float(c)
    enc = Encoding(q, int(c), math.floor(lo * inv - cf), math.ceil(hi * inv - cf))
    assert max(abs(enc.y_lo), abs(enc.y_hi)) < 2**21 and abs(c) < 2**31, "row integers must fit 32 bits"
    return enc


def center_of(bounds: tuple[float, float]) -> float:
    """The fixed centre around which centred sums and squared deviations are taken."""
    return encoding(bounds).center


def row_int_sql(clamped_sql: str, bounds: tuple[float, float]) -> str:
    """DuckDB INTEGER expression of a row integer (``clamped_sql`` is clamped, never NULL).

    ``CAST(DOUBLE AS INTEGER)`` rounds to the nearest integer.
    """
    enc = encoding(bounds)
    x = f"{clamped_sql} * {1.0 / enc.quantum!r}"
    if enc.center_units:
        x = f"{x} - {float(enc.center_units)!r}"
    return f"CAST({x} AS INTEGER)"


@dataclass(frozen=True)
class FixedPoint:
    """One sum over row integers: its SQL, its per-row bound and its real-valued unit."""

    enc: Encoding
    kind: SumKind

    @property
    def unit(self) -> float:
        """Real value of one integer unit of the sum."""
        return (SQ_SHIFT * self.enc.quantum) ** 2 if self.kind == "squared" else self.enc.quantum

    @property
    def quantum(self) -> float:
        """Resolution of one row's value (before squaring)."""
        return SQ_SHIFT * self.enc.quantum if self.kind == "squared" else self.enc.quantum

    @property
    def center(self) -> float:
        return 0.0 if self.kind == "plain" else self.enc.center

    @property
    def max_abs(self) -> int:
        """The largest |row contribution| to this sum, from the bounds."""
        lo, hi = self.enc.y_lo, self.enc.y_hi
        if self.kind == "plain":
            return max(abs(lo + self.enc.center_units), abs(hi + self.enc.center_units))
        if self.kind == "centered":
            return max(abs(lo), abs(hi))
        return max(abs(_trunc_div(lo, SQ_SHIFT)), abs(_trunc_div(hi, SQ_SHIFT))) ** 2

    def row_sql(self, y_sql: str) -> str:
        """One row's contribution, from its row integer ``y_sql``."""
        if self.kind == "plain":
            return f"(CAST({y_sql} AS BIGINT) + {self.enc.center_units})"
        if self.kind == "centered":
            return y_sql
        return f"(CAST({y_sql} // {SQ_SHIFT} AS BIGINT) * CAST({y_sql} // {SQ_SHIFT} AS BIGINT))"

    def sum_sql(self, y_sql: str) -> str:
        """The exact integer sum over a group (a plain sum adds ``C · count`` once, not per row)."""
        if self.kind == "plain":
            return f"(sum({y_sql}) + {self.enc.center_units} * count(*))"
        return f"sum({self.row_sql(y_sql)})"

    def clip_total(self, total: int | float | None) -> int:
        """The integer total as OpenDP takes it (clipping a total is 1-Lipschitz: no extra cost)."""
        return max(-_I64_SAFE, min(_I64_SAFE, int(total or 0)))

    def decode(self, total: int | float | None) -> float:
        return self.clip_total(total) * self.unit


def fixed_point(bounds: tuple[float, float], *, squared: bool, centered: bool) -> FixedPoint:
    kind: SumKind = "squared" if squared else "centered" if centered else "plain"
    return FixedPoint(encoding(bounds), kind)
