"""Charts the showcase builds from what may be shown: a released table or a DP answer.

Both functions return a :class:`~countylab.showcase.chartspec.Chart`; the chart refuses a DP
number without its interval, and here a released table refuses a cell that is not a number where
a number is drawn, naming the row and column, so the operator learns what to fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from countylab.errors import ValidationFailed
from countylab.showcase.chartspec import Chart, ChartKind, Series, Source
from countylab.showcase.releases import ReleasedTable

KINDS = ("bar", "line", "table", "card")


def _column(table: ReleasedTable, name: str) -> int:
    if name not in table.columns:
        raise ValidationFailed(
            f"表格 {table.name} 没有列“{name}”（有：{'、'.join(table.columns)}）",
            f"table {table.name} has no column '{name}' (it has: {', '.join(table.columns)})",
            column=name,
        )
    return table.columns.index(name)


def _number(table: ReleasedTable, row: int, col: int) -> float | None:
    cell = table.rows[row][col] if col < len(table.rows[row]) else None
    if cell is None or cell == "":
        return None
    if isinstance(cell, bool) or not isinstance(cell, int | float) or not math.isfinite(cell):
        raise ValidationFailed(
            f"表格 {table.name} 第 {row + 2} 行“{table.columns[col]}”列不是数字：{str(cell)[:40]}",
            f"table {table.name}, row {row + 2}, column '{table.columns[col]}' is not a number",
            row=row + 2,
            column=table.columns[col],
        )
    return float(cell)


def from_table(
    table: ReleasedTable,
    *,
    kind: str,
    title: str,
    source: Source,
    category_column: str = "",
    value_columns: Sequence[str] = (),
    unit: str = "",
    note: str = "",
) -> Chart:
    if kind not in KINDS:
        raise ValidationFailed(f"不支持的图表类型：{kind}", f"unknown chart kind: {kind}", reason="kind")
    title = title.strip() or table.description or table.name
    if kind == "table":
        return Chart(
            ChartKind.table,
            title,
            source,
            unit=unit,
            columns=list(table.columns),
            rows=[list(r) for r in table.rows],
            note=note,
        )
    values = [v for v in value_columns if v] or [c for c in table.columns if c != category_column][:1]
    if not values:
        raise ValidationFailed("请选择数值列", "choose a value column", reason="value_columns")
    idx = [_column(table, v) for v in values]
    if kind == "card":
        if not table.rows:
            raise ValidationFailed(f"表格 {table.name} 没有数据行", f"table {table.name} has no rows")
        value = _number(table, 0, idx[0])
        return Chart(ChartKind.card, title, source, unit=unit, series=[Series(values[0], [value])], note=note)
    cat = _column(table, category_column or table.columns[0])
    categories = [str(r[cat]) if cat < len(r) else "" for r in table.rows]
    series = [
        Series(name, [_number(table, i, j) for i in range(len(table.rows))])
        for name, j in zip(values, idx, strict=True)
    ]
    return Chart(ChartKind(kind), title, source, unit=unit, categories=categories, series=series, note=note)


def from_dp_answer(
    answer: Mapping[str, Any],
    *,
    title: str,
    source: Source,
    category_column: str,
    value_column: str,
    labels: Mapping[str, str],
    unit: str = "",
    note: str = "",
) -> Chart:
    """A bar chart of one DP answer's column, each value with its interval (as the answer gave it)."""
    columns = list(answer.get("columns", []))
    if value_column in columns and not category_column:  # one figure: a single bar named by the title
        vi = columns.index(value_column)
        single = [[title, r[vi]] for r in answer.get("rows", [])[:1]]
        answer = {**answer, "columns": ["", value_column], "rows": single}
        columns, category_column = ["", value_column], ""
    if category_column not in columns or value_column not in columns:
        raise ValidationFailed(
            f"该查询结果没有列“{category_column}”或“{value_column}”",
            f"the answer has no column '{category_column}' or '{value_column}'",
            column=value_column,
        )
    ci, vi = columns.index(category_column), columns.index(value_column)
    intervals = (answer.get("intervals") or {}).get(value_column)
    if not intervals:
        raise ValidationFailed(
            f"“{value_column}”没有区间，不能展示", f"'{value_column}' has no interval: it cannot be shown"
        )
    rows = list(answer.get("rows", []))
    codes = [str(r[ci]) for r in rows]
    vals = [float(r[vi]) if r[vi] is not None else None for r in rows]
    low = [float(i[0]) if i else None for i in intervals]
    high = [float(i[1]) if i else None for i in intervals]
    texts = [f"{round(v):,}" if v is not None else "" for v in vals]
    return Chart(
        ChartKind.bar,
        title,
        source,
        unit=unit,
        categories=[labels.get(c, c) for c in codes],
        series=[Series(value_column, vals, low=low, high=high, texts=texts)],
        note=note,
    )
