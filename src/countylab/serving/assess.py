"""Memorisation tests (记忆性检测): run on the real training data, inside the lab, before approval.

A trained model is an output of a job: a model that memorised its training rows answers with
them.  Before a checker may approve a model, the lab calls it (in its sandboxed worker) on a
sample of the rows it was trained on and on perturbed copies of them, and measures:

``exact_recall_excess``
    share of training rows whose target the model reproduces exactly (to the card's decimals),
    minus the share a constant predictor gets (the most common target).  An interpolating
    model (1-nearest-neighbour, an unpruned tree) scores near 1 − baseline; a model that
    generalises scores near 0.
``mia_advantage``
    a loss-threshold membership-inference attack: the best ``|P(loss ≤ t | training row) −
    P(loss ≤ t | perturbed row)|`` over thresholds t (two-sided: a model that answers
    something else exactly on its training rows is as telling as one that is exact there).
    The perturbed rows move one categorical input to another row's value and jitter numeric
    inputs by 2% of their spread, keeping the target: a model that generalises loses about as
    much on both; one that memorised is exact on the rows it saw and not around them.
``nn_copy_rate``
    share of perturbed rows on which the model answers exactly the target of the nearest
    training row (when that is not the common value): the signature of a lookup table.
``rare_value_rate``
    share of answers equal to a value that at most two training rows hold in any numeric column
    (an income, an exact age-and-day…): a model returning another column's rare values.
``pii_hits``
    answers that look like ID numbers, mobiles or bank cards (the serving scan, on probes).

The first three need the card's ``target`` (a column of the training dataset); without it the
verdict is at most ``warn`` and the checker is told the membership tests could not run.
Thresholds are in :data:`LIMITS`; the checker sees every figure.
"""

from __future__ import annotations

import math
import random
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from countylab.catalog.pii import match_kinds

LIMITS = {"exact_recall_excess": 0.2, "mia_advantage": 0.3, "nn_copy_rate": 0.5, "rare_value_rate": 0.05}
SAMPLE_ROWS = 400
SEED = 43697  # only for reproducing a report in a test: the lab draws a fresh seed each time


def fresh_seed() -> int:
    """A seed no model can know in advance.  With a fixed seed in the source code, a model
    trained on the data can compute which rows the tests sample and which probes they send,
    and be honest exactly there while memorising every other row."""
    return secrets.randbelow(2**31)


Predict = Callable[[list[list[Any]]], list[Any]]


@dataclass(frozen=True)
class TrainingSample:
    """Rows of the training dataset: ``columns`` holds the card's inputs (then the target)."""

    dataset: str
    version: int | None
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    numeric_values: Counter[float]  # value → rows holding it, over every numeric column


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _perturb(rows: list[list[Any]], rng: random.Random) -> list[list[Any]]:
    """Perturbed copies: numeric inputs jittered by 2% of their spread, one categorical input
    (or, with none, one numeric input) replaced by another row's value."""
    if not rows:
        return []
    width = len(rows[0])
    spans: list[float | None] = []
    for j in range(width):
        nums = sorted(x for x in (_num(r[j]) for r in rows) if x is not None)
        spans.append((nums[-1] - nums[0]) if len(nums) == len(rows) and nums else None)
    categorical = [j for j in range(width) if spans[j] is None]
    out = []
    for r in rows:
        p = list(r)
        for j, span in enumerate(spans):
            if span is not None and span > 0:
                p[j] = float(p[j]) + rng.uniform(-0.02, 0.02) * span
        swap = rng.choice(categorical) if categorical else rng.randrange(width)
        p[swap] = rng.choice(rows)[swap]
        out.append(p)
    return out


def _distance(a: Sequence[Any], b: Sequence[Any], spans: Sequence[float | None]) -> float:
    d = 0.0
    for x, y, span in zip(a, b, spans, strict=True):
        if span:
            d += abs(float(x) - float(y)) / span
        else:
            d += 0.0 if x == y else 1.0
    return d


def _as_number(p: Any) -> float | None:
    if isinstance(p, list):
        p = p[0] if p else None
    return _num(p)


def _significant(v: float) -> bool:
    """Values with at least four significant digits: a coincidence is unlikely."""
    text = f"{abs(v):.6g}".replace(".", "").lstrip("0").rstrip("0")
    return len(text) >= 4


def assess(
    sample: TrainingSample,
    inputs: Sequence[str],
    target: str | None,
    decimals: int,
    predict: Predict,
    seed: int | None = None,
) -> dict[str, Any]:
    """Run the memorisation tests; a JSON-able report with a ``verdict`` (pass, warn, fail)."""
    rng = random.Random(fresh_seed() if seed is None else seed)
    rows = sample.rows[:SAMPLE_ROWS]
    x = [list(r[: len(inputs)]) for r in rows]
    y = [_num(r[len(inputs)]) for r in rows] if target else []
    probes = _perturb(x, rng)
    p_members = predict(x) if x else []
    p_probes = predict(probes) if probes else []
    tol = 0.5 * 10.0 ** (-decimals)
    report: dict[str, Any] = {
        "dataset": sample.dataset,
        "version": sample.version,
        "rows": len(rows),
        "target": target,
        "limits": LIMITS,
    }
    answers = [a for a in (_as_number(p) for p in p_members + p_probes) if a is not None]
    rare = {v for v, n in sample.numeric_values.items() if n <= 2 and _significant(v)}
    report["rare_value_rate"] = (
        round(sum(1 for a in answers if round(a, 6) in rare) / len(answers), 4) if answers else 0.0
    )
    report["pii_hits"] = sum(
        1 for p in p_members + p_probes if match_kinds(str(p)) or match_kinds(f"{_as_number(p) or 0:.0f}")
    )
    if target and x:
        pm = [_as_number(p) for p in p_members]
        pq = [_as_number(p) for p in p_probes]
        pairs = [(a, t) for a, t in zip(pm, y, strict=True) if a is not None and t is not None]
        hits = sum(1 for a, t in pairs if abs(a - t) <= tol)
        common = Counter(round(t, decimals) for _, t in pairs).most_common(1)
        baseline = common[0][1] / len(pairs) if pairs else 0.0
        report["exact_recall"] = round(hits / len(pairs), 4) if pairs else 0.0
        report["baseline_recall"] = round(baseline, 4)
        report["exact_recall_excess"] = round(max(0.0, report["exact_recall"] - baseline), 4)
        loss_m = sorted(abs(a - t) for a, t in pairs)
        loss_q = sorted(abs(a - t) for a, t in zip(pq, y, strict=True) if a is not None and t is not None)
        report["mia_advantage"] = round(_advantage(loss_m, loss_q), 4)
        spans: list[float | None] = []
        for j in range(len(inputs)):
            nums = [_num(r[j]) for r in x]
            ok = [n for n in nums if n is not None]
            spans.append((max(ok) - min(ok)) or 1.0 if len(ok) == len(nums) and ok else None)
        mode = common[0][0] if common else None
        copies = considered = 0
        for probe, answer in zip(probes, pq, strict=True):
            if answer is None:
                continue
            nearest = min(range(len(x)), key=lambda i: _distance(probe, x[i], spans))
            t = y[nearest]
            if t is None or round(t, decimals) == mode:
                continue
            considered += 1
            copies += abs(answer - t) <= tol
        report["nn_copy_rate"] = round(copies / considered, 4) if considered else 0.0
    report["verdict"] = _verdict(report, has_target=bool(target))
    return report


def _advantage(members: list[float], probes: list[float]) -> float:
    """max_t |F_members(t) − F_probes(t)| over the observed losses (both lists sorted).

    Two-sided: an attacker infers membership from any difference.  A model can be deliberately
    *worse* on the rows it was trained on (answering something else there: another column,
    scaled, for exactly the training rows' inputs) and honest around them; a one-sided test
    (members closer to the truth) calls that model safe.
    """
    if not members or not probes:
        return 0.0
    best = 0.0
    for t in members + probes:
        fm = _cdf(members, t)
        fq = _cdf(probes, t)
        best = max(best, abs(fm - fq))
    return best


def _cdf(sorted_values: list[float], t: float) -> float:
    lo, hi = 0, len(sorted_values)
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_values[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo / len(sorted_values)


def _verdict(report: dict[str, Any], *, has_target: bool) -> str:
    if report.get("pii_hits"):
        return "fail"
    figures = {k: float(report[k]) for k in LIMITS if k in report}
    if any(v > LIMITS[k] for k, v in figures.items()):
        return "fail"
    if not has_target or any(v > LIMITS[k] / 2 for k, v in figures.items()):
        return "warn"
    return "pass"


def not_assessable(reason_zh: str, reason_en: str) -> dict[str, Any]:
    """The report when the tests cannot run (approval stays blocked)."""
    return {"verdict": "not_assessable", "reason_zh": reason_zh, "reason_en": reason_en}
