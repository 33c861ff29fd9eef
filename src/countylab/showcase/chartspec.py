"""One description of a chart, shared by the browser, dashboards and printed briefs.

A :class:`Chart` is plain data: what is drawn (``kind``), the numbers, their intervals where they
are DP statistics, and where every number comes from (:class:`Source`).  The browser component
(``static/chart.js``; ``static/map.js`` for maps) draws :meth:`Chart.to_dict`; the brief printer
draws the same object as an image.  Nothing here knows HTTP or the database.

A chart refuses to be built with a DP number that has no interval: on the showcase a DP
statistic is always shown with its interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from countylab.errors import ValidationFailed


class ChartKind(StrEnum):
    bar = "bar"
    line = "line"
    map = "map"  # a choropleth over towns or villages (``categories`` hold their codes)
    table = "table"
    card = "card"  # one figure (指标卡)


class SourceKind(StrEnum):
    open = "open"  # open data: a dataset graded 一般1级
    release = "release"  # a file released through the airlock
    dp = "dp"  # a DP statistic (with its interval)


@dataclass(frozen=True)
class Source:
    kind: SourceKind
    label: str  # what a reader sees: "空气质量监测（生态环境局）", "出域编号 R-12", "差分隐私统计"
    ref: str = ""  # dataset:7, release:12, metric:3 — the record it can be traced to
    as_of: str = ""  # ISO-8601 UTC time of the data


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]
    low: list[float | None] | None = None  # interval bounds (DP): same length as values
    high: list[float | None] | None = None
    texts: list[str] | None = None  # the values as shown (rounded to their interval)


@dataclass(frozen=True)
class Chart:
    kind: ChartKind
    title: str
    source: Source
    unit: str = ""
    categories: list[str] = field(default_factory=list)  # x axis; for maps, the area codes
    category_names: list[str] | None = None  # for maps: the area names, same order
    series: list[Series] = field(default_factory=list)
    columns: list[str] | None = None  # table
    rows: list[list[Any]] | None = None  # table
    level: str = ""  # map: "town" | "village"
    note: str = ""  # one line under the chart (e.g. "95% 区间")

    def __post_init__(self) -> None:
        n = len(self.categories)
        if self.kind in (ChartKind.bar, ChartKind.line, ChartKind.map):
            if not self.series:
                raise ValidationFailed(
                    f"图表“{self.title}”没有数据系列", f"Chart '{self.title}' has no series"
                )
            for s in self.series:
                for name, seq in (("values", s.values), ("low", s.low), ("high", s.high), ("texts", s.texts)):
                    if seq is not None and len(seq) != n:
                        raise ValidationFailed(
                            f"图表“{self.title}”的系列“{s.name}”长度与分类不符",
                            f"Chart '{self.title}': series '{s.name}' {name} has {len(seq)} items "
                            f"for {n} categories",
                        )
        if self.kind == ChartKind.card and (len(self.series) != 1 or len(self.series[0].values) != 1):
            raise ValidationFailed(
                f"指标卡“{self.title}”只能有一个数", f"Figure card '{self.title}' holds exactly one number"
            )
        if self.kind == ChartKind.table and (self.columns is None or self.rows is None):
            raise ValidationFailed(
                f"表格“{self.title}”缺少列或行", f"Table '{self.title}' needs columns and rows"
            )
        if self.kind == ChartKind.map and self.level not in ("town", "village"):
            raise ValidationFailed(
                f"地图“{self.title}”须指明乡镇或村级", f"Map '{self.title}' needs level town or village"
            )
        if self.source.kind == SourceKind.dp:
            for s in self.series:
                for i, v in enumerate(s.values):
                    if v is not None and (
                        s.low is None or s.high is None or s.low[i] is None or s.high[i] is None
                    ):
                        raise ValidationFailed(
                            f"差分隐私统计“{self.title}”的“{s.name}”缺少区间，不能展示",
                            f"DP statistic '{self.title}' ({s.name}) has no interval; it cannot be shown",
                        )
        for s in self.series:
            for v in s.values:
                if v is not None and not math.isfinite(v):
                    raise ValidationFailed(
                        f"图表“{self.title}”含非有限数值", f"Chart '{self.title}' holds a non-finite number"
                    )

    def to_dict(self) -> dict[str, Any]:
        """The JSON the browser component draws (``chart.js``: ``countylab.chart.draw(el, spec)``)."""
        out: dict[str, Any] = {
            "kind": self.kind.value,
            "title": self.title,
            "unit": self.unit,
            "source": {
                "kind": self.source.kind.value,
                "label": self.source.label,
                "ref": self.source.ref,
                "as_of": self.source.as_of,
            },
            "categories": list(self.categories),
            "series": [
                {
                    "name": s.name,
                    "values": list(s.values),
                    "low": list(s.low) if s.low is not None else None,
                    "high": list(s.high) if s.high is not None else None,
                    "texts": list(s.texts) if s.texts is not None else None,
                }
                for s in self.series
            ],
            "note": self.note,
        }
        if self.category_names is not None:
            out["category_names"] = list(self.category_names)
        if self.kind == ChartKind.table:
            out["columns"] = list(self.columns or [])
            out["rows"] = [list(r) for r in self.rows or []]
        if self.kind == ChartKind.map:
            out["level"] = self.level
        return out

    def numbers(self) -> list[tuple[str, float, SourceKind]]:
        """Every number the chart shows, named (``"城关镇 · 独居老人"``), for the approval record."""
        named: list[tuple[str, float, SourceKind]] = []
        labels = self.category_names or self.categories
        for s in self.series:
            for i, v in enumerate(s.values):
                if v is not None:
                    where = labels[i] if i < len(labels) else ""
                    named.append((f"{where} · {s.name}".strip(" ·"), float(v), self.source.kind))
        for r in self.rows or []:
            for j, cell in enumerate(r):
                if isinstance(cell, int | float) and not isinstance(cell, bool):
                    column = (self.columns or [])[j] if j < len(self.columns or []) else str(j)
                    named.append((f"{r[0]} · {column}", float(cell), self.source.kind))
        return named
