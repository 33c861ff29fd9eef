"""The DP SQL engine: ``plan`` prices a query, ``execute`` releases it.

Typical use by the gateway::

    plan = engine.plan(sql, epsilon=1.0)
    ledger.charge(project, plan.cost)          # atomically, before anything runs
    cached = cache.get(plan.fingerprint)       # identical query ⇒ same answer, no new cost
    result = cached or engine.execute(plan)

Timing defence: ``execute`` and ``execute_sdc`` return only at multiples of
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

from countylab.errors import TooLarge, ValidationFailed
from countylab.privacy import sdc
from countylab.privacy.mechanisms import key_text
from countylab.privacy.planner import QueryPlan, build_plan
from countylab.privacy.release import Noisy, Rows, add_noise, agg_cell, released_keys
from countylab.privacy.result import DPResult, Interval, QueryFailed
from countylab.privacy.spec import EngineSettings, TableSpec, tables_by_name
from countylab.privacy.sqlcheck import QueryModel, parse_query
from countylab.privacy.worker import ExactRunner, InProcessRunner

T = TypeVar("T")

__all__ = ["DPEngine", "QueryFailed", "padded"]


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
        model = parse_query(sql, self.tables, self.settings.limits.max_result_rows)
        return build_plan(model, epsilon, self.settings, delta)

    def execute(self, plan: QueryPlan) -> DPResult:
        """Release the noisy answer of a plan whose cost has already been charged.

        Raises only ``QueryFailed`` (one type, one message), whatever went wrong.
        """
        return padded(self.settings.time_bucket_s, lambda: self._release_or_fail(plan))

    def execute_sdc(self, sql: str, rules: sdc.SdcRules | None = None) -> DPResult:
        """Exact aggregates for SDC-eligible data; failing cells are suppressed with a reason."""
        return padded(self.settings.time_bucket_s, lambda: self._sdc(sql, rules or sdc.SdcRules()))

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

    # -- SDC path -----------------------------------------------------------------------------
    def _sdc(self, sql: str, rules: sdc.SdcRules) -> DPResult:
        model = parse_query(sql, self.tables, self.settings.limits.max_result_rows)
        allowed = ("count", "count_unit", "sum", "avg")
        if model.unit_sql is None or any(a.kind not in allowed for a in model.aggs):
            raise ValidationFailed(
                "SDC 模式只支持 COUNT、SUM、AVG 且需要隐私主体",
                "SDC mode supports COUNT, SUM and AVG over data with a privacy unit",
                reason="sdc",
            )
        cols = sorted({a.column for a in model.aggs if a.column is not None})
        ng = len(model.group_sqls)
        inner = [f'{g} AS "__g{i}"' for i, g in enumerate(model.group_sqls)] + [
            f'{model.unit_sql} AS "__u"',
            'count(*) AS "__n"',
        ]
        outer = [f'"__g{i}"' for i in range(ng)] + ["count(*)", 'sum("__n")']
        top = max(2, rules.nk_n)
        for j, c in enumerate(cols):
            inner += [f'sum({c}) AS "__s{j}"', f'count({c}) AS "__c{j}"']
            outer += [f'sum("__s{j}")', f'sum("__c{j}")', f'sum(abs("__s{j}"))', f'max(abs("__s{j}"), {top})']
        where = f" WHERE {model.where_sql}" if model.where_sql else ""
        gb = ", ".join([f'"__g{i}"' for i in range(ng)] + ['"__u"'])
        gb_out = " GROUP BY " + ", ".join(f'"__g{i}"' for i in range(ng)) if ng else ""
        q = (
            f"WITH u AS (SELECT {', '.join(inner)} FROM {model.from_sql}{where} GROUP BY {gb}) "
            f"SELECT {', '.join(outer)} FROM u{gb_out}"
        )
        exact = self.runner.run(list(model.tables), [q], bounded=False)[0]
        if len(exact) > self.settings.limits.max_result_rows:
            raise TooLarge("结果行数超过上限", "result has too many rows")
        rows: Rows = []
        suppressed: list[dict[str, Any]] = []
        for r in exact:
            units, n = int(r[ng]), int(r[ng + 1] or 0)
            row: list[Any] = []
            for out in model.outputs:
                if out.source == "group":
                    row.append(r[out.index])
                    continue
                a = model.aggs[out.index]
                if a.kind in ("count", "count_unit"):
                    value: Any = n if a.kind == "count" else units
                    reasons = sdc.check_frequency(sdc.CellStats(units, float(n)), rules)
                else:
                    base = ng + 2 + 4 * cols.index(a.column or "")
                    s, cnt, tot, tops = r[base], int(r[base + 1] or 0), r[base + 2], r[base + 3]
                    value = s if a.kind == "sum" else (s / cnt if cnt else None)
                    stats = sdc.CellStats(units, float(tot or 0.0), tuple(float(x) for x in tops or ()))
                    reasons = sdc.check_magnitude(stats, rules)
                if reasons:
                    suppressed.append({"row": list(r[:ng]), "column": out.name, "reasons": reasons})
                    value = None
                row.append(value)
            rows.append(tuple(row))
        intervals: list[tuple[Interval, ...]] = [tuple(None for _ in model.outputs) for _ in rows]
        rows, intervals = _order(model, rows, intervals)
        return DPResult(
            [o.name for o in model.outputs],
            rows,
            intervals,
            0.0,
            0.0,
            suppressed,
            notes=["SDC: exact values; cells failing threshold/p%/dominance rules suppressed"],
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
    notes = [
        f"pure ε-DP (Laplace, OpenDP); ε={plan.epsilon:g} split equally over "
        f"{len(plan.measurements)} measurement(s); "
        f"each unit contributes ≤ {plan.model.contribution} row(s)",
        "numeric values clamped to steward bounds; NULL numbers count as the bounds' midpoint",
    ]
    if threshold is not None:
        notes.append(
            f"group keys not public: DP partition selection, threshold {threshold}, δ={plan.delta:g}"
        )
    return notes
