"""Turn exact per-group aggregates into released noisy cells with confidence intervals.

Everything here is either an OpenDP measurement (through ``mechanisms``) or post-processing
of its output (ratios, clipping, sorting), which costs no extra privacy.
"""

from __future__ import annotations

import math
from typing import Any

from countylab.privacy.fixedpoint import center_of
from countylab.privacy.mechanisms import (
    key_text,
    laplace_halfwidth,
    laplace_ints,
    normal_z,
    quantile_from_counts,
    threshold_counts,
)
from countylab.privacy.planner import Measurement, QueryPlan
from countylab.privacy.result import Interval
from countylab.privacy.sqlcheck import Agg

Rows = list[tuple[Any, ...]]


class Noisy:
    """Noisy values of every measurement for the released keys, with their noise scales."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}
        self.scales: dict[str, float] = {}
        self.hist: dict[str, list[list[int]]] = {}


def released_keys(
    plan: QueryPlan,
    exact: dict[str, tuple[Any, ...]],
    groups: dict[str, tuple[Any, ...]],
    noisy: Noisy,
    col: dict[str, int],
    max_rows: int,
) -> tuple[list[str], int | None]:
    """Keys to release: none (one row), the public key set, or DP partition selection.

    Partition selection releases at most ``max_rows`` keys: those with the largest noisy counts.
    """
    model = plan.model
    if not model.group_sqls:
        return [key_text(())], None
    if model.public_keys is not None:
        for key in model.public_keys:
            groups[key_text(key)] = tuple(key)
        return [key_text(k) for k in model.public_keys], None
    m = next(x for x in plan.measurements if x.kind == "count")
    counts = {k: int(v[col[m.key]] or 0) for k, v in exact.items()}
    rel, scale, thr = threshold_counts(counts, int(m.sensitivity), m.epsilon, plan.delta)
    # At most max_rows partitions, chosen by their noisy counts: post-processing, so the number
    # of groups in the data never turns into an error or a cost.
    top = sorted(rel, key=lambda k: (-rel[k], k))[:max_rows]
    keys = sorted(top, key=lambda k: tuple((v is None, str(v)) for v in groups[k]))
    noisy.values[m.key] = [float(rel[k]) for k in keys]
    noisy.scales[m.key] = scale
    return keys, thr


def add_noise(
    plan: QueryPlan,
    keys: list[str],
    exact: dict[str, tuple[Any, ...]],
    col: dict[str, int],
    hists: dict[str, dict[str, list[int]]],
    noisy: Noisy,
) -> None:
    for m in plan.measurements:
        if m.key in noisy.values:
            continue
        if m.kind == "hist":
            h = hists.get(m.key, {})
            flat = [c for k in keys for c in h.get(k, [0] * plan.bins)]
            out, scale = laplace_ints(flat, int(m.sensitivity), m.epsilon)
            noisy.hist[m.key] = [out[i * plan.bins : (i + 1) * plan.bins] for i in range(len(keys))]
            noisy.scales[m.key] = scale
            continue
        vals = [exact[k][col[m.key]] if k in exact else None for k in keys]
        if m.kind in ("count", "count_unit"):
            ints, scale = laplace_ints([int(v or 0) for v in vals], int(m.sensitivity), m.epsilon)
            noisy.values[m.key] = [float(v) for v in ints]
        else:  # exact integer sums, integer noise, then back to real units (see fixedpoint)
            fx = m.fixed
            assert fx is not None
            ints, scale = laplace_ints([fx.clip_total(v) for v in vals], int(m.sensitivity), m.epsilon)
            noisy.values[m.key] = [v * fx.unit for v in ints]
            scale *= fx.unit
        noisy.scales[m.key] = scale


def _clip(v: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, v))


def _meas(plan: QueryPlan, kind: str, column: str | None) -> Measurement:
    return next(m for m in plan.measurements if m.kind == kind and m.column == column)


def agg_cell(plan: QueryPlan, a: Agg, i: int, noisy: Noisy, confidence: float) -> tuple[Any, Interval]:
    """Value and interval of aggregate ``a`` for released key number ``i``."""
    if a.kind in ("count", "count_unit"):
        key = f"{a.kind}:None"
        v = max(0.0, noisy.values[key][i])
        hw = laplace_halfwidth(noisy.scales[key], confidence)
        return int(v), (max(0.0, v - hw), v + hw)
    if a.kind == "quantile":
        assert a.bounds is not None
        lo, hi = a.bounds
        edges = [lo + (hi - lo) * j / plan.bins for j in range(plan.bins + 1)]
        return quantile_from_counts(edges, noisy.hist[f"hist:{a.column}"][i], a.q), None
    assert a.bounds is not None
    lo, hi = a.bounds
    mid, half = center_of(a.bounds), (hi - lo) / 2.0  # the centre centred sums are taken around
    sm = _meas(plan, "sum", a.column)
    s, var_s = noisy.values[sm.key][i], 2.0 * noisy.scales[sm.key] ** 2
    if a.kind == "sum":
        hw = laplace_halfwidth(noisy.scales[sm.key], confidence)
        return s, (s - hw, s + hw)
    n_raw, var_n = noisy.values["count:None"][i], 2.0 * noisy.scales["count:None"] ** 2
    n = max(1.0, n_raw)
    z = normal_z(confidence)
    if not sm.centered:  # centre the plain sum: S_c = S - mid·N
        s, var_s = s - mid * n, var_s + mid * mid * var_n
    if a.kind == "avg":
        r = s / n
        sd = math.sqrt(var_s + r * r * var_n) / n
        v = _clip(mid + r, lo, hi)
        return v, (_clip(v - z * sd, lo, hi), _clip(v + z * sd, lo, hi))
    qm = _meas(plan, "sq", a.column)
    ss, var_ss = noisy.values[qm.key][i], 2.0 * noisy.scales[qm.key] ** 2
    corr = 1.0 if a.pop or n <= 1.0 else n / (n - 1.0)
    var = _clip((ss / n - (s / n) ** 2) * corr, 0.0, half * half)
    g_ss, g_s, g_n = 1.0 / n, -2.0 * s / n**2, -ss / n**2 + 2.0 * s * s / n**3
    sd = math.sqrt(g_ss**2 * var_ss + g_s**2 * var_s + g_n**2 * var_n) * corr
    lo_v, hi_v = _clip(var - z * sd, 0.0, half * half), _clip(var + z * sd, 0.0, half * half)
    if a.kind == "var":
        return var, (lo_v, hi_v)
    return math.sqrt(var), (math.sqrt(lo_v), math.sqrt(hi_v))
