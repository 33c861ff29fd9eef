"""The DP SQL engine: ``plan`` prices a query, ``execute`` releases it.

Typical use by the gateway::

    plan = engine.plan(sql, epsilon=1.0)
    ledger.charge(project, plan.cost)          # atomically, before anything runs
    cached = cache.get(plan.fingerprint)       # identical query ⇒ same answer, no new cost
    result = cached or engine.execute(plan)

Timing defence: ``execute`` returns only at multiples of
``settings.time_bucket_s`` after they start (errors too), so wall time reveals at most which
bucket a query fell in rather than how many rows matched.

Outcome defence: whatever goes wrong inside ``execute`` (engine error, timeout, memory, too
many internal groups for one transfer) surfaces as one ``QueryFailed`` with one fixed message,
and nothing that depends on the data decides between "answer" and "error" on the normal path:
analyst expressions are total, group caps come from metadata, and partition selection keeps at
most ``max_result_rows`` keys by their noisy counts.  See docs/explanation/dp-guarantee.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from countylab.errors import TooLarge
from countylab.privacy.mechanisms import key_text
from countylab.privacy.notes import note
from countylab.privacy.planner import QueryPlan, build_plan
from countylab.privacy.release import Noisy, Rows, add_noise, agg_cell, released_keys
from countylab.privacy.result import DPResult, Interval, QueryFailed
from countylab.privacy.spec import EngineSettings, TableSpec, tables_by_name
from countylab.privacy.sqlcheck import Lru, QueryModel, parse_query, tables_key
from countylab.privacy.worker import ExactRunner, InProcessRunner

T = TypeVar("T")

__all__ = ["DPEngine", "QueryFailed", "padded"]

# A plan is a pure function of (text, permitted tables, settings, ε, δ): parsing, pricing and
# fingerprinting cost ~2 ms a query, so a repeated question (the gateway plans each request
# twice; analysts re-run questions) reuses it.  Only successful plans are kept.
_PLANS: Lru[QueryPlan] = Lru(512)


def padded(bucket_s: float, fn: Callable[[], T]) -> T:
    """Run ``fn`` and return (or raise) only at the next multiple of ``bucket_s``."""
    start = time.monotonic()
    try:
        return fn()
    finally:
        if bucket_s > 0:
            elapsed = time.monotonic() - start
            target = max(1, math.ceil(elapsed / bucket_s)) * bucket_s
            while (left := target - (time.monotonic() - start)) > 0:
                time.sleep(left)


class DPEngine:
    """Differentially private SQL over a fixed set of permitted tables (one grant's datasets)."""

    def __init__(
        self,
        tables: Sequence[TableSpec],
        settings: EngineSettings | None = None,
        runner: ExactRunner | None = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        self.tables = tables_by_name(tables)
        self.runner: ExactRunner = runner or InProcessRunner(self.settings.limits, self.settings.bound_seed)

    def plan(self, sql: str, epsilon: float, delta: float | None = None) -> QueryPlan:
        """Validate and price ``sql``; touches no data.  ``plan.cost`` is the exact (ε, δ)."""

        def make() -> QueryPlan:
            model = parse_query(sql, self.tables, self.settings.limits.max_result_rows)
            return build_plan(model, epsilon, self.settings, delta)

        plain = type(epsilon) in (int, float) and type(delta) in (int, float, type(None))
        if not (isinstance(sql, str) and plain):
            return make()
        key = (sql, tables_key(self.tables), self.settings, repr(float(epsilon)), repr(delta))
        return _PLANS.get_or(key, make)

    def execute(self, plan: QueryPlan) -> DPResult:
        """Release the noisy answer of a plan whose cost has already been charged.

        Raises only ``QueryFailed`` (one type, one message), whatever went wrong.
        """
        return padded(self.settings.time_bucket_s, lambda: self._release_or_fail(plan))

    def close(self) -> None:
        self.runner.close()

    # -- DP path ------------------------------------------------------------------------------
    def _release_or_fail(self, plan: QueryPlan) -> DPResult:
        try:
            return self._release(plan)
        except Exception as exc:  # noqa: BLE001 - every failure after the charge looks the same
            raise QueryFailed() from exc

    def _run_all(self, plan: QueryPlan) -> list[Rows]:
        """Exact rows of the main and histogram SQL; never refused for having many groups.

        The runner caps one transfer at ``max_internal_groups`` rows.  A query over more groups
        than that is read again in pages (ordered by its group columns), so the number of groups
        in the data changes the time a query takes, never whether it is answered.
        """
        tables = list(plan.model.tables)
        sqls = ([plan.main_sql] if plan.main_sql else []) + [s for _, s in plan.hist_sqls]
        try:
            results = self.runner.run(tables, sqls, bounded=True)
        except TooLarge:
            results = [self._paged(tables, sql) for sql in sqls]
        return ([] if plan.main_sql else [[]]) + results

    def _paged(self, tables: list[TableSpec], sql: str) -> Rows:
        page = self.settings.limits.max_internal_groups
        try:
            return self.runner.run(tables, [sql], bounded=True)[0]
        except TooLarge:
            pass
        out: Rows = []
        while True:
            chunk = self.runner.run(
                tables, [f"SELECT * FROM ({sql}) ORDER BY ALL LIMIT {page} OFFSET {len(out)}"], bounded=True
            )[0]
            out.extend(chunk)
            if len(chunk) < page:
                return out

    def _release(self, plan: QueryPlan) -> DPResult:
        model = plan.model
        results = self._run_all(plan)
        ng = len(model.group_sqls)
        col: dict[str, int] = {}
        for m in plan.measurements:
            if m.kind != "hist":
                col[m.key] = len(col)
        exact: dict[str, tuple[Any, ...]] = {}
        groups: dict[str, tuple[Any, ...]] = {key_text(()): ()}
        for r in results[0]:
            k = key_text(r[:ng])
            exact[k], groups[k] = r[ng:], r[:ng]
        hists: dict[str, dict[str, list[int]]] = {}
        for (mkey, _), hrows in zip(plan.hist_sqls, results[1:], strict=True):
            h = hists.setdefault(mkey, {})
            for r in hrows:
                h.setdefault(key_text(r[:ng]), [0] * plan.bins)[int(r[ng])] += int(r[ng + 1])
        noisy = Noisy()
        keys, threshold = released_keys(plan, exact, groups, noisy, col, self.settings.limits.max_result_rows)
        add_noise(plan, keys, exact, col, hists, noisy)
        rows: Rows = []
        intervals: list[tuple[Interval, ...]] = []
        for i, k in enumerate(keys):
            row: list[Any] = []
            ints: list[Interval] = []
            for out in model.outputs:
                if out.source == "group":
                    row.append(groups[k][out.index])
                    ints.append(None)
                else:
                    v, ci = agg_cell(plan, model.aggs[out.index], i, noisy, self.settings.confidence)
                    row.append(v)
                    ints.append(ci)
            rows.append(tuple(row))
            intervals.append(tuple(ints))
        rows, intervals = _order(model, rows, intervals)
        return DPResult(
            [o.name for o in model.outputs],
            rows,
            intervals,
            plan.epsilon,
            plan.delta,
            notes=_notes(plan, threshold),
            fingerprint=plan.fingerprint,
        )


def _order(
    model: QueryModel, rows: Rows, intervals: list[tuple[Interval, ...]]
) -> tuple[Rows, list[tuple[Interval, ...]]]:
    """ORDER BY and LIMIT applied to released values (post-processing)."""
    pairs = list(zip(rows, intervals, strict=True))
    gcols = [i for i, o in enumerate(model.outputs) if o.source == "group"]
    pairs.sort(key=lambda p: tuple((p[0][i] is None, str(p[0][i])) for i in gcols))
    for idx, desc in reversed(model.order_by):

        def sort_key(p: tuple[tuple[Any, ...], tuple[Interval, ...]], i: int = idx) -> tuple[bool, Any]:
            v = p[0][i]
            return (v is None, v if isinstance(v, int | float) else str(v))

        pairs.sort(key=sort_key, reverse=desc)
    if model.limit is not None:
        pairs = pairs[: model.limit]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _notes(plan: QueryPlan, threshold: int | None) -> list[str]:
    """How the answer was made, in English from ``dp.note.*`` (``privacy.notes`` localises them)."""
    notes = [
        note(
            "pure",
            epsilon=f"{plan.epsilon:g}",
            measurements=len(plan.measurements),
            contribution=plan.model.contribution,
        ),
        note("clamped"),
    ]
    if any(m.fixed is not None for m in plan.measurements):
        notes.append(note("fixed_point"))
    if threshold is not None:
        notes.append(note("partition", threshold=threshold, delta=f"{plan.delta:g}"))
    return notes
