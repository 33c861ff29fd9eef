"""Cross-tabulations, pivot tables and descriptions, with each cell's contributors.

Every builder returns ``(header, rows, sidecar fields)``: the rows are what the CSV shows,
the sidecar fields say for each cell how many units contributed and the largest absolute
contributions.  A privacy unit is a row of the input frame unless ``unit`` names a column
(several rows of one person then count once, and their values are summed per unit first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from countylab.output.sidecar import TOTAL_LABEL, cell_entry

Built = tuple[list[str], list[list[Any]], dict[str, Any]]
AGGS = ("mean", "sum", "median", "std")


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _per_unit(df: pd.DataFrame, keys: list[str], unit: str | None, values: list[str]) -> pd.DataFrame:
    if unit is None:
        return df[[*keys, *values]].dropna(subset=keys)
    grouped = df.dropna(subset=keys).groupby([*keys, unit], observed=True, dropna=True)
    return grouped[values].sum().reset_index() if values else grouped.size().reset_index()[[*keys, unit]]


def _key(values: Any) -> list[str]:
    return [str(v) for v in (values if isinstance(values, tuple) else (values,))]


def crosstab(
    df: pd.DataFrame,
    index: str | Sequence[str],
    columns: str,
    *,
    unit: str | None = None,
    margins: bool = True,
) -> Built:
    """Counts of units by ``index`` (rows) and the categories of ``columns`` (one column each)."""
    keys = _as_list(index)
    frame = _per_unit(df, [*keys, columns], unit, [])
    counts = frame.groupby([*keys, columns], observed=True).size().unstack(columns, fill_value=0)
    counts = counts.sort_index().reindex(sorted(counts.columns, key=str), axis=1)
    cats = [str(c) for c in counts.columns]
    header = [*keys, *cats] + (["合计"] if margins else [])
    rows: list[list[Any]] = []
    meta_rows: list[dict[str, Any]] = []
    for key, line in counts.iterrows():
        values = [int(v) for v in line.tolist()]
        row: list[Any] = [*_key(key), *values]
        cells = {c: {"n": v} for c, v in zip(cats, values, strict=True)}
        if margins:
            row.append(sum(values))
            cells["合计"] = {"n": sum(values)}
        rows.append(row)
        meta_rows.append({"key": _key(key), "cells": cells})
    if margins:
        totals = [int(v) for v in counts.sum(axis=0).tolist()]
        label = [TOTAL_LABEL] + [""] * (len(keys) - 1)
        rows.append([*label, *totals, sum(totals)])
        cells = {c: {"n": v} for c, v in zip(cats, totals, strict=True)}
        cells["合计"] = {"n": sum(totals)}
        meta_rows.append({"key": label, "cells": cells, "total": True})
    sidecar = {
        "group_columns": keys,
        "count_columns": [*cats, *(["合计"] if margins else [])],
        "rows": meta_rows,
        "n_obs": int(len(frame)),
        "margins": margins,
    }
    return header, rows, sidecar


def pivot_table(
    df: pd.DataFrame,
    index: str | Sequence[str],
    values: str | Sequence[str],
    *,
    aggfunc: str | Sequence[str] = "mean",
    unit: str | None = None,
    count_column: str = "n",
) -> Built:
    """One row per group: the number of units (``count_column``) and each aggregate of
    ``values`` (``mean_<v>``, ``sum_<v>`` …).  Sums are magnitude cells (dominance rules);
    means, medians and standard deviations are statistic cells (threshold on their units)."""
    keys, vals, aggs = _as_list(index), _as_list(values), _as_list(aggfunc)
    bad = [a for a in aggs if a not in AGGS]
    if bad:
        raise ValueError(f"unsupported aggregate {bad}: use {AGGS} (min and max are one unit's value)")
    frame = _per_unit(df, keys, unit, vals)
    header = [*keys, count_column]
    mags: list[str] = []
    stats: list[str] = []
    for v in vals:
        for a in aggs:
            name = f"{a}_{v}"
            header.append(name)
            (mags if a == "sum" else stats).append(name)
    rows: list[list[Any]] = []
    meta_rows: list[dict[str, Any]] = []
    for key, group in frame.groupby(keys, observed=True, sort=True):
        n = int(len(group))
        row: list[Any] = [*_key(key), n]
        cells: dict[str, Any] = {count_column: {"n": n}}
        for v in vals:
            col = group[v].dropna().astype(float)
            for a in aggs:
                result = getattr(col, a)() if len(col) else float("nan")
                row.append(float(result))
                entry = cell_entry(col.tolist())
                cells[f"{a}_{v}"] = entry if a == "sum" else {"n": entry["n"]}
        rows.append(row)
        meta_rows.append({"key": _key(key), "cells": cells})
    sidecar = {
        "group_columns": keys,
        "count_columns": [count_column],
        "magnitude_columns": mags,
        "statistic_columns": stats,
        "rows": meta_rows,
        "n_obs": int(len(frame)),
    }
    return header, rows, sidecar


def describe(df: pd.DataFrame, columns: Sequence[str]) -> Built:
    """Count, mean and standard deviation of numeric ``columns``: one row per variable.
    No minimum, maximum or quantiles: each of those is one person's value."""
    header = ["variable", "n", "mean", "std"]
    rows: list[list[Any]] = []
    meta_rows: list[dict[str, Any]] = []
    for c in columns:
        col = pd.to_numeric(df[c], errors="coerce").dropna().astype(float)
        n = int(len(col))
        rows.append(
            [c, n, float(col.mean()) if n else float("nan"), float(col.std()) if n > 1 else float("nan")]
        )
        meta_rows.append({"key": [c], "cells": {"n": {"n": n}, "mean": {"n": n}, "std": {"n": n}}})
    sidecar = {
        "group_columns": ["variable"],
        "count_columns": ["n"],
        "statistic_columns": ["mean", "std"],
        "rows": meta_rows,
        "n_obs": int(len(df)),
    }
    return header, rows, sidecar
