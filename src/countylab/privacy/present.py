"""How a released DP answer is shown to people: readable headers, names next to codes, and
numbers rounded to what their interval supports.

Why a separate step after the release: everything here is post-processing of an answer that
was already paid for, using public metadata only (column titles, public key sets and their
labels).  It never reads the rows and never touches a ledger, so showing 城关镇 instead of
``330729001`` costs no privacy budget (``tests/answers/`` proves the ledgers are identical).
The unrounded values stay in the answer's ``rows`` and ``intervals``; the ``display`` block
built here is an additional view, so nothing is lost for a caller who wants the raw numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

import pyarrow as pa
import sqlglot
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlglot import exp

from countylab.errors import NotFound
from countylab.i18n import normalise, translator
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.privacy import answers
from countylab.privacy.notes import localise
from countylab.storage.catalog_models import DatasetColumn, KeySet
from countylab.storage.models import Dataset
from countylab.storage.privacy_models import QueryRun

#: the confidence level of every interval the gateway reports
INTERVAL_LEVEL = 0.95
#: the finest rounding step tried before a value is shown as it is
_FINEST = -12


# --------------------------------------------------------------------------- rounding


@dataclass(frozen=True)
class Rounded:
    """A noisy value rounded to its interval's precision: ``exponent`` is log10 of the step."""

    value: float
    exponent: int
    text: str
    low: float
    high: float
    low_text: str
    high_text: str


def _fmt(d: Decimal, exponent: int) -> str:
    if exponent >= 0:
        return f"{int(d):,}"
    return f"{d:,.{-exponent}f}"


def _quantize(d: Decimal, exponent: int, rounding: str) -> Decimal:
    return d.scaleb(-exponent).quantize(Decimal(1), rounding=rounding).scaleb(exponent)


def round_to_interval(value: float, low: float, high: float, integer: bool = False) -> Rounded:
    """Round ``value`` to the significant digits its interval's half-width justifies.

    The step is the power of ten at or below the half-width (±37 → 10, ±0.8 → 0.1): finer digits
    are noise.  The rounded value is moved at most half a step, less than the half-width, and if it
    would still leave ``[low, high]`` (an interval clipped at a bound) the step is refined until it
    does not: the shown value always lies inside the shown interval.  The interval itself is rounded
    outwards, so it never claims more precision than it has.
    """
    v, lo, hi = Decimal(value), Decimal(min(low, high)), Decimal(max(low, high))
    half = (float(high) - float(low)) / 2.0
    if not all(math.isfinite(x) for x in (value, low, high)):
        raise ValueError("round_to_interval takes finite numbers")
    exponent = math.floor(math.log10(half)) if half > 0 else (0 if integer or value == int(value) else -6)
    if integer:
        exponent = max(exponent, 0)
    r = v
    while exponent >= _FINEST:
        r = _quantize(v, exponent, ROUND_HALF_EVEN)
        if lo <= r <= hi or not (lo <= v <= hi):
            break
        exponent -= 1
    if not (lo <= r <= hi) and lo <= v <= hi:  # pragma: no cover - intervals narrower than 1e-12
        r = v
    return Rounded(
        value=float(r),
        exponent=exponent,
        text=_fmt(r, exponent),
        low=float(_quantize(lo, exponent, ROUND_FLOOR)),
        high=float(_quantize(hi, exponent, ROUND_CEILING)),
        low_text=_fmt(_quantize(lo, exponent, ROUND_FLOOR), exponent),
        high_text=_fmt(_quantize(hi, exponent, ROUND_CEILING), exponent),
    )


# --------------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class ColumnMeta:
    title: str
    labels: dict[str, str] | None = None  # code -> name, from a public key set with labels


@dataclass(frozen=True)
class TableMeta:
    columns: dict[str, ColumnMeta]
    people: bool  # one row per person: COUNT(*) counts people
    unit_column: str | None = None


@dataclass(frozen=True)
class AnswerMeta:
    """Public metadata of the tables an answer was computed from (no rows)."""

    tables: dict[str, TableMeta] = field(default_factory=dict)


def load_meta(session: Session, dataset_names: list[str]) -> AnswerMeta:
    """Titles and key-set labels of the datasets named ``name@vN`` in an answer."""
    names = sorted({n.split("@", 1)[0] for n in dataset_names})
    if not names:
        return AnswerMeta()
    sets = {k.name: k for k in session.execute(select(KeySet)).scalars()}
    tables: dict[str, TableMeta] = {}
    for ds in session.execute(select(Dataset).where(Dataset.name.in_(names))).scalars():
        cols = session.execute(select(DatasetColumn).where(DatasetColumn.dataset_id == ds.id)).scalars()
        metas = {}
        for c in cols:
            ks = sets.get(c.key_set or "")
            labels = {str(k): str(v) for k, v in (ks.labels or {}).items()} if ks is not None else None
            metas[c.name] = ColumnMeta(title=c.title or "", labels=labels or None)
        people = ds.privacy_unit == "person" and ds.dp_max_rows_per_unit == 1
        unit = ds.privacy_unit_column if ds.privacy_unit != "none" else None
        tables[ds.name] = TableMeta(columns=metas, people=people, unit_column=unit)
    return AnswerMeta(tables)


# --------------------------------------------------------------------------- headers


@dataclass(frozen=True)
class Source:
    """What one output column is: a group key (a column) or a measure (an aggregate of one)."""

    role: str  # "group" | "measure"
    column: str | None = None
    table: str | None = None
    func: str | None = None  # count, count_distinct, sum, avg, median, quantile, var, stddev, other
    arg: float | None = None  # the quantile's fraction
    alias: str | None = None


_FUNCS: dict[type[exp.Expression], str] = {
    exp.Sum: "sum",
    exp.Avg: "avg",
    exp.Median: "median",
    exp.Variance: "var",
    exp.VariancePop: "var",
    exp.Stddev: "stddev",
    exp.StddevPop: "stddev",
    exp.StddevSamp: "stddev",
    exp.Min: "min",
    exp.Max: "max",
}


def _plain_column(agg: Any) -> tuple[exp.Column | None, bool]:
    """The aggregate's argument when it is one plain column (``DISTINCT x`` too), and whether it
    is ``*`` or absent.  An expression (``SUM(income * 2)``) is neither: it keeps its own name."""
    arg = agg.this
    if isinstance(arg, exp.Distinct):
        arg = arg.expressions[0] if len(arg.expressions) == 1 else None
    if arg is None or isinstance(arg, exp.Star):
        return None, True
    return (arg, False) if isinstance(arg, exp.Column) else (None, False)


def _source(node: exp.Expression, aliases: dict[str, str]) -> Source:
    alias = node.alias if isinstance(node, exp.Alias) else None
    inner = node.this if isinstance(node, exp.Alias) else node
    if isinstance(inner, exp.Column):
        return Source("group", inner.name, aliases.get(inner.table, inner.table) or None, alias=alias)
    agg: Any = inner if isinstance(inner, exp.AggFunc) else inner.find(exp.AggFunc)
    if agg is None or agg is not inner:  # an expression of keys (age / 10), or of an aggregate
        return Source("measure" if agg is not None else "group", None, alias=alias)
    col, star = _plain_column(agg)
    table = (aliases.get(col.table, col.table) or None) if col is not None else None
    name = col.name if col is not None else None
    if name is None and not star:
        return Source("measure", None, table, "other", alias=alias)
    if isinstance(agg, exp.Count):
        distinct = isinstance(agg.this, exp.Distinct)
        func = "count_distinct" if distinct else ("count_star" if name is None else "count")
        return Source("measure", name, table, func, alias=alias)
    if isinstance(agg, exp.Quantile | exp.PercentileCont | exp.PercentileDisc | exp.ApproxQuantile):
        q = agg.args.get("quantile") or agg.args.get("expression")
        try:
            frac = float(q.name) if q is not None else None
        except ValueError:
            frac = None
        return Source("measure", name, table, "quantile", frac, alias)
    return Source("measure", name, table, _FUNCS.get(type(agg), "other"), alias=alias)


def sources(sql: str, n_columns: int) -> list[Source] | None:
    """The outermost SELECT's output columns, or None when the SQL cannot be read that way."""
    from countylab.privacy.tables import split_as_of

    try:
        plain, _ = split_as_of(sql)
        tree = sqlglot.parse_one(plain, read="duckdb")
    except Exception:  # noqa: BLE001 - naming is best effort; the answer is shown either way
        return None
    select_ = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if select_ is None or len(select_.expressions) != n_columns:
        return None
    aliases: dict[str, str] = {}
    for t in select_.find_all(exp.Table):
        if t.alias:
            aliases[t.alias] = t.name
    first = select_.find(exp.From)
    first_table = first.find(exp.Table) if first is not None else None
    out = []
    for node in select_.expressions:
        src = _source(node, aliases)
        if src.role == "measure" and src.table is None and first_table is not None:
            src = Source(src.role, src.column, first_table.name, src.func, src.arg, src.alias)
        out.append(src)
    return out


def _find(meta: AnswerMeta, column: str | None, table: str | None) -> tuple[str | None, ColumnMeta | None]:
    if column is None:
        return None, None
    if table and table in meta.tables and column in meta.tables[table].columns:
        return table, meta.tables[table].columns[column]
    for name, tm in meta.tables.items():
        if column in tm.columns:
            return name, tm.columns[column]
    return None, None


def _plain_title(column: str, cm: ColumnMeta | None, lang: str, named: bool) -> str:
    """A column's words: its Chinese title in the Chinese UI, its name in English; a code column
    shown with names loses its 代码/编码 (town_code → 乡镇 / town)."""
    if lang == "zh-CN" and cm is not None and cm.title:
        title = cm.title
        if named:
            for suffix in ("代码", "编码", "编号"):
                if title.endswith(suffix) and len(title) > len(suffix):
                    return title[: -len(suffix)]
        return title
    words = column
    if named and words.endswith(("_code", "_id")):
        words = words.rsplit("_", 1)[0]
    return words.replace("_", " ")


def header(src: Source | None, name: str, meta: AnswerMeta, lang: str) -> str:
    """The header people read: ``count(*)`` → 人数, ``sum(x)`` → "<x's title>合计"; aliases win."""
    lang = normalise(lang)
    t = translator(lang)
    if src is None or src.alias:
        return name
    table, cm = _find(meta, src.column, src.table)
    if src.role == "group":
        return _plain_title(src.column or name, cm, lang, bool(cm and cm.labels)) if src.column else name
    tm = meta.tables.get(src.table or table or "")
    if src.func == "count_star":
        return t("answers.people") if tm is not None and tm.people else t("answers.rows")
    if src.column is None:
        return name
    title = _plain_title(src.column, cm, lang, False)
    if src.func == "count_distinct" and tm is not None and tm.unit_column == src.column:
        return t("answers.people") if tm.people or _is_person(meta, table) else t("answers.units")
    if src.func == "quantile":
        if src.arg is None:
            return name
        return t("answers.quantile", title=title, percent=f"{src.arg * 100:g}")
    if src.func in ("count", "count_distinct", "sum", "avg", "median", "var", "stddev", "min", "max"):
        return t(f"answers.{src.func}", title=title)
    return name


def _is_person(meta: AnswerMeta, table: str | None) -> bool:
    tm = meta.tables.get(table or "")
    return tm is not None and tm.unit_column is not None and tm.people


# --------------------------------------------------------------------------- the display block


def _label(value: Any, labels: dict[str, str] | None) -> str | None:
    if labels is None or value is None:
        return None
    return labels.get(str(value))


def display(answer: dict[str, Any], sql: str, meta: AnswerMeta, lang: str) -> dict[str, Any]:
    """The ``display`` block of an answer: headers, roles, shown cells, names, rounded values.

    ``cells[r][c]`` is the text to show; ``values[r][c]`` the rounded number (None for keys);
    ``low``/``high`` the interval rounded outwards (text); ``names[r][c]`` the key set's name of a
    code.  ``missing`` lists, per named group column, the key-set names that no row carries
    (groups not released, or absent), so a chart can mark them.
    """
    columns: list[str] = list(answer.get("columns") or [])
    rows: list[list[Any]] = [list(r) for r in answer.get("rows") or []]
    intervals: dict[str, list[Any]] = dict(answer.get("intervals") or {})
    srcs = sources(sql, len(columns))
    headers, roles, labels_of = [], [], []
    for i, name in enumerate(columns):
        src = srcs[i] if srcs else None
        headers.append(header(src, name, meta, lang))
        role = src.role if src else ("measure" if name in intervals else "group")
        if name in intervals:
            role = "measure"
        roles.append(role)
        _, cm = _find(meta, src.column if src else name, src.table if src else None)
        labels_of.append(cm.labels if role == "group" and cm is not None else None)
    cells, values, low, high, names = [], [], [], [], []
    for r, row in enumerate(rows):
        c_row: list[str] = []
        v_row: list[Any] = []
        l_row: list[str | None] = []
        h_row: list[str | None] = []
        n_row: list[str | None] = []
        for c, value in enumerate(row):
            iv = (intervals.get(columns[c]) or [None] * len(rows))[r] if columns[c] in intervals else None
            label = _label(value, labels_of[c])
            n_row.append(label)
            if label is not None:
                c_row.append(f"{label} ({value})")
                v_row.append(None)
                l_row.append(None)
                h_row.append(None)
            elif isinstance(value, int | float) and not isinstance(value, bool) and iv is not None:
                rd = round_to_interval(float(value), float(iv[0]), float(iv[1]), isinstance(value, int))
                c_row.append(rd.text)
                v_row.append(rd.value)
                l_row.append(rd.low_text)
                h_row.append(rd.high_text)
            else:
                c_row.append("—" if value is None else str(value))
                v_row.append(
                    value if isinstance(value, int | float) and not isinstance(value, bool) else None
                )
                l_row.append(None)
                h_row.append(None)
        cells.append(c_row)
        values.append(v_row)
        low.append(l_row)
        high.append(h_row)
        names.append(n_row)
    missing: dict[str, list[str]] = {}
    for c, labels in enumerate(labels_of):
        if labels and roles.count("group") == 1:
            seen = {str(r[c]) for r in rows}
            missing[columns[c]] = [labels[k] for k in sorted(labels) if k not in seen]
    return {
        "headers": headers,
        "roles": roles,
        "cells": cells,
        "values": values,
        "low": low,
        "high": high,
        "names": names,
        "missing": missing,
        "interval_level": INTERVAL_LEVEL,
        "notes": [localise(str(n), lang) for n in answer.get("notes") or []],
    }


def answer_table(answer: dict[str, Any], shown: dict[str, Any], lang: str) -> pa.Table:
    """The answer as a table for CSV/XLSX: names beside codes, each measure rounded with its
    interval's bounds (rounded outwards) in two columns after it.  Headers are the shown ones."""
    t = translator(normalise(lang))
    columns: list[str] = list(answer.get("columns") or [])
    rows: list[list[Any]] = [list(r) for r in answer.get("rows") or []]
    intervals: dict[str, list[Any]] = dict(answer.get("intervals") or {})
    data: dict[str, list[Any]] = {}

    def put(title: str, values: list[Any]) -> None:
        while title in data:
            title += "'"
        data[title] = values

    for c, name in enumerate(columns):
        head = shown["headers"][c]
        raw = [r[c] for r in rows]
        if any(n is not None for n in (shown["names"][r][c] for r in range(len(rows)))):
            put(head, [shown["names"][r][c] for r in range(len(rows))])
            put(t("answers.code_of", title=head), [None if v is None else str(v) for v in raw])
        elif name in intervals:
            los: list[Any] = []
            his: list[Any] = []
            vals: list[Any] = []
            for r, v in enumerate(raw):
                iv = intervals[name][r]
                if iv is None or not isinstance(v, int | float) or isinstance(v, bool):
                    vals.append(v if isinstance(v, int | float) else None)
                    los.append(None)
                    his.append(None)
                    continue
                rd = round_to_interval(float(v), float(iv[0]), float(iv[1]), isinstance(v, int))
                whole = rd.exponent >= 0
                vals.append(int(rd.value) if whole else rd.value)
                los.append(int(rd.low) if whole else rd.low)
                his.append(int(rd.high) if whole else rd.high)
            put(head, vals)
            put(t("answers.low_of", title=head), los)
            put(t("answers.high_of", title=head), his)
        else:
            put(head, raw)
    return pa.table({k: pa.array(v) for k, v in data.items()}) if data else pa.table({})


def stored_answer(session: Session, actor: Principal, query_id: int) -> tuple[QueryRun, dict[str, Any]]:
    """A query's released answer from the answer cache, for the members of its project only
    (the answer was released to the project; oversight roles see the SQL, not the numbers)."""
    run = session.get(QueryRun, query_id)
    if run is None:
        raise NotFound(f"查询 {query_id} 不存在", f"query {query_id} not found")
    authorize(actor, Permission.project_read, project_id=run.project_id, target=f"query:{query_id}")
    hit = answers.lookup(session, run.project_id, run.fingerprint) if run.fingerprint else None
    if run.status not in ("answered", "cached") or hit is None or answers.is_pending(hit.answer):
        raise NotFound("这次查询没有可导出的结果", "this query has no answer to export", query_id=query_id)
    return run, dict(hit.answer)


def note_lines(answer: dict[str, Any], lang: str) -> list[str]:
    """The DP note of an exported answer: ε spent, interval level, how numbers were rounded."""
    t = translator(normalise(lang))
    lines = [
        t(
            "answers.note_epsilon",
            epsilon=f"{float(answer.get('epsilon_spent') or 0):g}",
            delta=f"{float(answer.get('delta_spent') or 0):g}",
        ),
        t("answers.note_interval", level=f"{INTERVAL_LEVEL:.0%}"),
        t("answers.note_rounding"),
    ]
    if answer.get("datasets"):
        lines.append(t("answers.note_datasets", datasets=", ".join(answer["datasets"])))
    return lines + [localise(str(n), lang) for n in answer.get("notes") or []]
