"""Thin wrappers over OpenDP's vetted measurements.

Why wrappers: every noisy number the engine releases passes through exactly one of these
functions, each of which builds an OpenDP measurement, checks with OpenDP's own privacy map
that it costs no more than the ε share it was given, and only then invokes it.  No noise is
drawn anywhere else.  All noise is on integers (counts, histogram bins and fixed-point sums,
see ``fixedpoint``): there is no floating-point noise path.

Building and checking a measurement costs ~0.3 ms (Laplace) to ~5 ms (the threshold search of
partition selection), a visible share of a warm query, and depends only on (sensitivity, ε)
or (contribution, ε, δ).  So each checked measurement is built once per process and kept
(``functools.lru_cache``): every call still invokes it afresh, drawing new noise from
OpenDP's own generator; only the construction and the privacy-map check are reused.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import opendp.measurements as dp_m
import opendp.transformations as dp_t
from opendp.domains import atom_domain, map_domain, vector_domain
from opendp.metrics import absolute_distance, l01inf_distance, l1_distance
from opendp.mod import enable_features

# Not ``opendp.prelude``: it also imports OpenDP's scikit-learn extras (1.5 s on every start of
# the server and of each DP worker), and none of them is used here.
enable_features("contrib")

_SLACK = 1.0 + 1e-9


def _checked_scale(build: Any, d_in: Any, epsilon: float, sensitivity: float) -> tuple[Any, float]:
    """Smallest scale (from sensitivity/ε, nudged up) whose OpenDP map is within ε."""
    scale = sensitivity / epsilon
    for _ in range(50):
        meas = build(scale)
        if meas.map(d_in) <= epsilon * _SLACK:
            return meas, scale
        scale *= 1.0 + 1e-6
    raise AssertionError("OpenDP privacy map never fell within the epsilon share")


def _whole(n: int | float) -> int:
    """``n`` as an int, refusing anything that is not a whole number (never rounds it down)."""
    if isinstance(n, bool) or int(n) != n:
        raise ValueError("sensitivities are whole numbers of integer units")
    return int(n)


@functools.lru_cache(maxsize=1024)
def _laplace(sensitivity: int, epsilon: float) -> tuple[Any, float]:
    space = vector_domain(atom_domain(T="i64")), l1_distance(T="i64")
    return _checked_scale(lambda s: dp_m.make_laplace(*space, scale=s), sensitivity, epsilon, sensitivity)


def laplace_ints(values: Sequence[int], sensitivity: int, epsilon: float) -> tuple[list[int], float]:
    """Discrete Laplace on integer counts (L1 sensitivity ``sensitivity``); returns (noisy, scale)."""
    meas, scale = _laplace(_whole(sensitivity), float(epsilon))
    return list(meas([int(v) for v in values])), scale


def key_text(key: Sequence[Any]) -> str:
    return json.dumps([None if v is None else str(v) for v in key], ensure_ascii=False)


def threshold_counts(
    counts: dict[str, int], contribution: int, epsilon: float, delta: float
) -> tuple[dict[str, int], float, int]:
    """DP partition selection: noisy counts, released only when above a threshold.

    One unit touches at most ``contribution`` keys with at most that many rows in all, so the
    L0, L1 and L∞ distances are all ``contribution``.  The threshold is the smallest integer
    for which OpenDP's map reports δ ≤ ``delta``; a key held by few units almost never shows.
    Returns (released counts, scale, threshold).
    """
    meas, scale, threshold = _threshold(_whole(contribution), float(epsilon), float(delta))
    released = meas({key: int(v) for key, v in counts.items()})
    return {str(a): int(b) for a, b in released.items()}, scale, threshold


@functools.lru_cache(maxsize=256)
def _threshold(k: int, epsilon: float, delta: float) -> tuple[Any, float, int]:
    """The checked Laplace-threshold measurement: (measurement, scale, threshold)."""
    dom = map_domain(atom_domain(T=str), atom_domain(T="i64"))
    met = l01inf_distance(absolute_distance(T="i64"))
    scale = k / epsilon

    def build(t: int, s: float) -> Any:
        return dp_m.make_laplace_threshold(dom, met, scale=s, threshold=t)

    for _ in range(50):
        if build(10**9, scale).map((k, k, k))[0] <= epsilon * _SLACK:
            break
        scale *= 1.0 + 1e-6
    lo, hi = k, k + 10
    while build(hi, scale).map((k, k, k))[1] > delta:
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if build(mid, scale).map((k, k, k))[1] <= delta:
            hi = mid
        else:
            lo = mid + 1
    return build(hi, scale), scale, hi


def quantile_from_counts(edges: Sequence[float], noisy_counts: Sequence[float], q: float) -> float:
    """Post-process noisy bin counts into a quantile with OpenDP's CDF transformation."""
    counts = [max(0.0, float(c)) for c in noisy_counts]
    if sum(counts) <= 0.0:
        return (float(edges[0]) + float(edges[-1])) / 2.0
    post = dp_t.make_quantiles_from_counts(
        bin_edges=[float(e) for e in edges], alphas=[q], interpolation="linear"
    )
    return float(post(counts)[0])


def laplace_halfwidth(scale: float, confidence: float) -> float:
    """Half-width of the central interval of Laplace(scale) noise at ``confidence``."""
    return scale * math.log(1.0 / (1.0 - confidence))


def normal_z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)
