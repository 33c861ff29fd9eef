"""From a validated query model to a priced plan: measurements, ε split, engine-written SQL.

Accounting is pure ε-DP under basic composition: the query's ε is split equally over the
measurements it needs (one shared noisy count serves COUNT(*), AVG and VARIANCE denominators
and, when group keys are not public, partition selection too).  δ is spent only by partition
selection (OpenDP's Laplace-threshold measurement).  ``plan.cost`` is therefore known before
any data is touched, so the caller can charge the budget atomically first.

Contribution bounding happens on the relation that is aggregated, right before the aggregate
(see ``bounded_relation``): every sensitivity below is a function of ``k`` and the steward's
bounds only, never of the shape of the query's joins.

Sums are exact integer sums (see ``fixedpoint``): each clamped value is rounded to a multiple
of a power-of-two quantum chosen from the bounds, DuckDB adds the integers exactly (HUGEINT),
and OpenDP adds integer (discrete Laplace) noise, so floating-point rounding never enters the
quantity whose sensitivity the proof bounds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from countylab.errors import ValidationFailed
from countylab.privacy.canonical import canonical_key
from countylab.privacy.fixedpoint import FixedPoint, fixed_point, row_int_sql
from countylab.privacy.prepared_build import integer_name
from countylab.privacy.sandboxed_duckdb import clamped_name
from countylab.privacy.spec import EngineSettings
from countylab.privacy.sqlcheck import QueryModel

MeasKind = Literal["count", "count_unit", "sum", "sq", "hist"]
ENGINE_VERSION = "3"
REL = '"__rel"'


@dataclass(frozen=True)
class Measurement:
    """One noisy release.  ``sensitivity`` is in integer units (quanta for sums)."""

    kind: MeasKind
    column: str | None
    bounds: tuple[float, float] | None
    centered: bool
    epsilon: float
    sensitivity: float
    fixed: FixedPoint | None = None  # the integer encoding of sums (kind "sum" and "sq")

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
    main_sql: str  # "" when every measurement is a histogram (quantile-only queries)
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


class Relation:
    """The bounded relation a query aggregates, and how to name its columns.

    Three shapes, all with at most ``k`` rows per privacy unit:

    * no private table: the tables as they are (public data, one row = one contributor);
    * one private table and no join: the table filtered on its ``__rank <= k`` column (rows
      ranked per unit by a seeded hash when the table was materialised), so the query stays a
      plain filtered aggregate;
    * joins: an engine-written subquery over the join and the WHERE clause whose
      ``QUALIFY row_number() OVER (PARTITION BY unit ORDER BY <seeded row hashes>) <= k``
      keeps k rows per unit of the joined relation, and the aggregate reads that subquery.
    """

    def __init__(self, model: QueryModel, integer_columns: bool = False) -> None:
        self.model = model
        self.window = model.unit_sql is not None and model.joined
        self.integer_columns = integer_columns
        self.bounds = {
            a.column: a.bounds for a in model.aggs if a.column is not None and a.bounds is not None
        }
        self.columns = sorted(self.bounds)

    def group(self, i: int) -> str:
        return f'{REL}."__g{i}"' if self.window else self.model.group_sqls[i]

    def value(self, column: str) -> str:
        """The clamped value of an aggregated column."""
        return f'{REL}."__v{self.columns.index(column)}"' if self.window else clamped(column)

    def row_int(self, column: str) -> str:
        """The fixed-point row integer of an aggregated column (see ``fixedpoint``)."""
        if self.window:
            return f'{REL}."__y{self.columns.index(column)}"'
        return self._row_int(column)

    def _row_int(self, column: str) -> str:
        if self.integer_columns:  # precomputed when the version was prepared (``__i_<col>``)
            table, name = column.rsplit(".", 1)
            return f'{table}."{integer_name(name.strip(chr(34)))}"'
        return row_int_sql(clamped(column), self.bounds[column])

    def not_null(self, column: str) -> str:
        return f'{REL}."__n{self.columns.index(column)}"' if self.window else f"{column} IS NOT NULL"

    def unit(self) -> str:
        assert self.model.unit_sql is not None
        return f'{REL}."__u"' if self.window else self.model.unit_sql

    def source(self, extra_where: str | None = None) -> str:
        """`` FROM … WHERE …`` of the bounded relation."""
        m = self.model
        if self.window:
            where = f" WHERE {extra_where}" if extra_where else ""
            return f" FROM {self._subquery()} AS {REL}{where}"
        conds = [c for c in (self._rank_filter(), m.where_sql, extra_where) if c]
        where = " WHERE " + " AND ".join(f"({c})" for c in conds) if conds else ""
        return f" FROM {m.from_sql}{where}"

    def _rank_filter(self) -> str | None:
        m = self.model
        if not m.private_aliases:
            return None
        return f'"{m.private_aliases[0]}"."__rank" <= {int(m.contribution)}'

    def _subquery(self) -> str:
        m = self.model
        cols = [f'{g} AS "__g{i}"' for i, g in enumerate(m.group_sqls)]
        cols.append(f'{m.unit_sql} AS "__u"')
        for j, c in enumerate(self.columns):
            cols += [
                f'{clamped(c)} AS "__v{j}"',
                f'{self._row_int(c)} AS "__y{j}"',
                f'({c} IS NOT NULL) AS "__n{j}"',
            ]
        where = f" WHERE {m.where_sql}" if m.where_sql else ""
        order = "hash(" + ", ".join(f'"{a}"."__h"' for a in m.aliases) + ")"
        return (
            f"(SELECT {', '.join(cols)} FROM {m.from_sql}{where} QUALIFY row_number() OVER "
            f"(PARTITION BY {m.unit_sql} ORDER BY {order}) <= {int(m.contribution)})"
        )


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


def _fixed(kind: MeasKind, bounds: tuple[float, float] | None, centered: bool) -> FixedPoint | None:
    if kind not in ("sum", "sq"):
        return None
    assert bounds is not None
    return fixed_point(bounds, squared=kind == "sq", centered=centered or kind == "sq")


def _sensitivity(kind: MeasKind, fixed: FixedPoint | None, k: int, grouped: bool) -> int:
    """L1 sensitivity in integer units: one unit adds or removes at most ``k`` rows."""
    if kind in ("count", "hist"):
        return k
    if kind == "count_unit":
        return k if grouped else 1
    assert fixed is not None
    return k * fixed.max_abs


def _select_list(model: QueryModel, rel: Relation, meas: list[Measurement]) -> str:
    parts = [f'{rel.group(i)} AS "__g{i}"' for i in range(len(model.group_sqls))]
    for i, m in enumerate(meas):
        if m.kind == "count":
            expr = "count(*)"
        elif m.kind == "count_unit":
            expr = f"count(DISTINCT {rel.unit()})" if model.unit_sql else "count(*)"
        elif m.kind in ("sum", "sq"):
            assert m.column is not None and m.fixed is not None
            expr = m.fixed.sum_sql(rel.row_int(m.column))
        else:
            continue
        parts.append(f'{expr} AS "__m{i}"')
    return ", ".join(parts)


def fingerprint(
    model: QueryModel, epsilon: float, delta: float, digests: Mapping[str, str], settings: EngineSettings
) -> str:
    """Key of a query for the answer cache: the same question ⇒ the same (cached) noisy answer,
    however it is worded (see :mod:`.canonical`)."""
    payload = {
        "v": ENGINE_VERSION,
        "query": canonical_key(model),
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
    meas = []
    for kind, col, b, cen in needs:
        fx = _fixed(kind, b, cen)
        sens = _sensitivity(kind, fx, model.contribution, grouped)
        meas.append(Measurement(kind, col, b, cen, share, float(sens), fx))
    d = (settings.delta if delta is None else delta) if select else 0.0
    if select and not 0.0 < d < 1e-3:
        raise ValidationFailed("δ 必须在 (0, 1e-3) 之间", "delta must be in (0, 1e-3)", reason="delta")
    rel = Relation(model, settings.integer_columns)
    groups = ", ".join(f'"__g{i}"' for i in range(len(model.group_sqls)))
    group_by = f" GROUP BY {groups}" if groups else ""
    main_sql = ""
    if any(m.kind != "hist" for m in meas):
        main_sql = f"SELECT {_select_list(model, rel, meas)}{rel.source()}{group_by}"
    hist_sqls = []
    nb = settings.quantile_bins
    for m in meas:
        if m.kind != "hist":
            continue
        assert m.column is not None and m.bounds is not None
        lo, hi = m.bounds
        width = (hi - lo) / nb
        cl = rel.value(m.column)
        binned = f"CAST(least({nb - 1}, greatest(0, floor(({cl} - {lo!r}) / {width!r}))) AS INTEGER)"
        gsel = "".join(f'{rel.group(i)} AS "__g{i}", ' for i in range(len(model.group_sqls)))
        sql = (
            f'SELECT {gsel}{binned} AS "__b", count(*) AS "__n"{rel.source(rel.not_null(m.column))}'
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
