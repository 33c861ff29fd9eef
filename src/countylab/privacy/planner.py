"""From a validated query model to a priced plan: measurements, ε split, engine-written SQL.

Accounting is pure ε-DP under basic composition: the query's ε is split equally over the
measurements it needs (one shared noisy count serves COUNT(*), AVG and VARIANCE denominators
and, when group keys are not public, partition selection too).  δ is spent only by partition
selection (OpenDP's Laplace-threshold measurement).  ``plan.cost`` is therefore known before
any data is touched, so the caller can charge the budget atomically first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from countylab.errors import ValidationFailed
from countylab.privacy.sandboxed_duckdb import clamped_name
from countylab.privacy.spec import EngineSettings
from countylab.privacy.sqlcheck import QueryModel

MeasKind = Literal["count", "count_unit", "sum", "sq", "hist"]
ENGINE_VERSION = "1"


@dataclass(frozen=True)
class Measurement:
    kind: MeasKind
    column: str | None
    bounds: tuple[float, float] | None
    centered: bool
    epsilon: float
    sensitivity: float

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.column}"


@dataclass(frozen=True)
class QueryPlan:
    model: QueryModel
    measurements: tuple[Measurement, ...]
    epsilon: float
    delta: float
    select_partitions: bool
    main_sql: str
    hist_sqls: tuple[tuple[str, str], ...]
    bins: int
    fingerprint: str

    @property
    def cost(self) -> tuple[float, float]:
        """(ε, δ) this query spends; charge it before calling ``execute``."""
        return (self.epsilon, self.delta)


def clamped(column: str) -> str:
    """The pre-clamped hidden copy of a qualified column (see ``sandboxed_duckdb.materialise``)."""
    table, name = column.rsplit(".", 1)
    return f'{table}."{clamped_name(name.strip(chr(34)))}"'


def _needs(model: QueryModel) -> list[tuple[MeasKind, str | None, tuple[float, float] | None, bool]]:
    out: list[tuple[MeasKind, str | None, tuple[float, float] | None, bool]] = []

    def add(kind: MeasKind, col: str | None, b: tuple[float, float] | None, centered: bool = False) -> None:
        if not any(o[0] == kind and o[1] == col for o in out):
            out.append((kind, col, b, centered))

    summed = {a.column for a in model.aggs if a.kind == "sum"}
    for a in model.aggs:
        if a.kind in ("count", "avg", "var", "stddev"):
            add("count", None, None)
        if a.kind == "count_unit":
            add("count_unit", None, None)
        if a.kind in ("sum", "avg", "var", "stddev"):
            add("sum", a.column, a.bounds, a.column not in summed)
        if a.kind in ("var", "stddev"):
            add("sq", a.column, a.bounds)
        if a.kind == "quantile":
            add("hist", a.column, a.bounds)
    return out


def _sensitivity(
    kind: MeasKind, bounds: tuple[float, float] | None, centered: bool, k: int, grouped: bool
) -> float:
    if kind == "count" or kind == "hist":
        return float(k)
    if kind == "count_unit":
        return float(k if grouped else 1)
    assert bounds is not None
    lo, hi = bounds
    half = (hi - lo) / 2.0
    if kind == "sum":
        return k * (half if centered else max(abs(lo), abs(hi)))
    return k * half * half


def _select_list(model: QueryModel, meas: list[Measurement]) -> str:
    parts = [f'{g} AS "__g{i}"' for i, g in enumerate(model.group_sqls)]
    for i, m in enumerate(meas):
        if m.kind == "count":
            expr = "count(*)"
        elif m.kind == "count_unit":
            expr = f"count(DISTINCT {model.unit_sql})" if model.unit_sql else "count(*)"
        elif m.kind in ("sum", "sq"):
            assert m.column is not None and m.bounds is not None
            mid = (m.bounds[0] + m.bounds[1]) / 2.0
            c = clamped(m.column)
            if m.kind == "sq":
                expr = f"sum(({c} - {mid!r}) * ({c} - {mid!r}))"
            else:
                expr = f"sum({c}) - {mid!r} * count(*)" if m.centered else f"sum({c})"
        else:
            continue
        parts.append(f'{expr} AS "__m{i}"')
    return ", ".join(parts)


def _base(model: QueryModel, extra_where: str | None = None) -> str:
    conds = [c for c in (model.where_sql, extra_where) if c]
    where = " WHERE " + " AND ".join(f"({c})" for c in conds) if conds else ""
    return f" FROM {model.from_sql}{where}"


def fingerprint(
    model: QueryModel, epsilon: float, delta: float, digests: Mapping[str, str], settings: EngineSettings
) -> str:
    """Canonical key of a query for the answer cache: same text ⇒ same (cached) noisy answer."""
    payload = {
        "v": ENGINE_VERSION,
        "sql": model.normalized_sql,
        "eps": repr(float(epsilon)),
        "delta": repr(float(delta)),
        "tables": dict(sorted(digests.items())),
        "bins": settings.quantile_bins,
        "seed": settings.bound_seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def build_plan(
    model: QueryModel, epsilon: float, settings: EngineSettings, delta: float | None = None
) -> QueryPlan:
    if not (epsilon > 0.0 and epsilon <= 100.0):
        raise ValidationFailed("ε 必须在 (0, 100] 之间", "epsilon must be in (0, 100]", reason="epsilon")
    needs = _needs(model)
    select = bool(model.group_sqls) and model.public_keys is None
    if select and not any(n[0] == "count" for n in needs):
        needs.insert(0, ("count", None, None, False))
    share = epsilon / len(needs)
    grouped = bool(model.group_sqls)
    meas = [
        Measurement(kind, col, b, cen, share, _sensitivity(kind, b, cen, model.contribution, grouped))
        for kind, col, b, cen in needs
    ]
    d = (settings.delta if delta is None else delta) if select else 0.0
    if select and not 0.0 < d < 1e-3:
        raise ValidationFailed("δ 必须在 (0, 1e-3) 之间", "delta must be in (0, 1e-3)", reason="delta")
    groups = ", ".join(f'"__g{i}"' for i in range(len(model.group_sqls)))
    group_by = f" GROUP BY {groups}" if groups else ""
    main_sql = f"SELECT {_select_list(model, meas)}{_base(model)}{group_by}"
    hist_sqls = []
    nb = settings.quantile_bins
    for m in meas:
        if m.kind != "hist":
            continue
        assert m.column is not None and m.bounds is not None
        lo, hi = m.bounds
        width = (hi - lo) / nb
        cl = clamped(m.column)
        b = f"CAST(least({nb - 1}, greatest(0, floor(({cl} - {lo!r}) / {width!r}))) AS INTEGER)"
        gsel = "".join(f'{g} AS "__g{i}", ' for i, g in enumerate(model.group_sqls))
        sql = (
            f'SELECT {gsel}{b} AS "__b", count(*) AS "__n"{_base(model, f"{m.column} IS NOT NULL")}'
            f' GROUP BY {groups + ", " if groups else ""}"__b"'
        )
        hist_sqls.append((m.key, sql))
    digests = {t.name: t.digest() for t in model.tables}
    return QueryPlan(
        model,
        tuple(meas),
        float(epsilon),
        d,
        select,
        main_sql,
        tuple(hist_sqls),
        nb,
        fingerprint(model, epsilon, d, digests, settings),
    )
