"""A dashboard widget's chart, built from its ONE source: open data, a released table or a DP metric.

Why render when the widget is saved (and again when its source changes) instead of when a page is
viewed: a public page must never compute anything — no DuckDB scan, no file read and above all no
DP query at view time.  The rendered :class:`~countylab.showcase.chartspec.Chart` (its ``to_dict``)
is stored on the widget, and pages only read it.

* **open** — an aggregate computed in DuckDB over the current version of a dataset graded
  一般1级 (``general_1``): the data is open, so an exact aggregate of it is too.  Column names are
  checked against the catalog before they reach SQL.
* **release** — a CSV file of an airlock request whose state is ``released``: its cells as released.
* **dp** — the cached answer of a showcase metric, every value with its 95% interval.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.catalog import service as catalog
from countylab.errors import NotFound, ValidationFailed
from countylab.privacy.present import round_to_interval
from countylab.showcase.chartspec import Chart, ChartKind, Series, Source, SourceKind
from countylab.storage.airlock_models import ReleaseFile, ReleaseRequest
from countylab.storage.dashboard_models import ShowcaseMetric
from countylab.storage.models import Dataset, Org

KINDS = tuple(k.value for k in ChartKind)
AGGREGATES = ("count", "sum", "avg", "min", "max")
BUCKETS = ("", "hour", "day", "month")
MAX_ROWS = 60  # a table widget shows at most this many rows; a bar chart at most this many bars
OPEN_GRADE = "general_1"


@dataclass(frozen=True)
class WidgetSpec:
    """What a composer asks for: chart kind, title, unit and the source's parameters."""

    kind: str
    title: str
    source_kind: str
    source: dict[str, Any]
    unit: str = ""

    def check(self) -> None:
        if self.kind not in KINDS:
            raise ValidationFailed(
                f"图表类型“{self.kind}”不存在（可选：{'、'.join(KINDS)}）",
                f"Unknown chart kind '{self.kind}' (one of {', '.join(KINDS)})",
                field="kind",
            )
        if self.source_kind not in ("open", "release", "dp"):
            raise ValidationFailed(
                "数据来源只能是开放数据、已出域结果或差分隐私指标",
                "The source is open data, a released result or a DP metric",
                field="source_kind",
            )
        if not self.title.strip() or len(self.title) > 200:
            raise ValidationFailed(
                "图表标题不能为空（最多200字）", "A title is required (at most 200 characters)"
            )


class Paths(Protocol):
    """Where a dataset version's Parquet files are (``lab.ingestion``)."""

    def read_paths(self, ds: Dataset, version: int | None = None) -> list[Path]: ...


def render(session: Session, paths: Paths, spec: WidgetSpec, *, level: str = "town") -> Chart:
    """The widget's chart now, or a bilingual error saying which parameter is wrong."""
    spec.check()
    if spec.source_kind == "open":
        return _open(session, paths, spec)
    if spec.source_kind == "release":
        return _release(session, spec)
    return _dp(session, spec)


# ------------------------------------------------------------------------------------------ open


def open_dataset(session: Session, dataset_id: Any) -> Dataset:
    ds = session.get(Dataset, _int(dataset_id, "dataset_id"))
    if ds is None:
        raise NotFound(f"数据集 {dataset_id} 不存在", f"Dataset {dataset_id} not found", field="dataset_id")
    return ds


def _open(session: Session, paths: Paths, spec: WidgetSpec) -> Chart:
    src = spec.source
    ds = open_dataset(session, src.get("dataset_id"))
    if ds.grade != OPEN_GRADE:
        raise ValidationFailed(
            f"数据集“{ds.title}”不是一般1级（开放）数据，不能直接用于看板；请改用已出域结果或差分隐私指标",
            f"Dataset '{ds.title}' is not graded general_1 (open): use a released result or a DP metric",
            field="dataset_id",
            reason="not_open",
        )
    names = {c.name: c for c in catalog.columns(session, ds.id)}
    agg = str(src.get("aggregate") or "count")
    value = str(src.get("value") or "")
    group = str(src.get("group_by") or "")
    bucket = str(src.get("bucket") or "")
    if agg not in AGGREGATES:
        raise ValidationFailed(f"汇总方式“{agg}”不存在", f"Unknown aggregate '{agg}'", field="aggregate")
    if bucket not in BUCKETS:
        raise ValidationFailed(f"时间粒度“{bucket}”不存在", f"Unknown time bucket '{bucket}'", field="bucket")
    for field_name, col in (("value", value), ("group_by", group)):
        if col and col not in names:
            raise ValidationFailed(
                f"数据集“{ds.title}”没有列“{col}”",
                f"Dataset '{ds.title}' has no column '{col}'",
                field=field_name,
            )
    if agg != "count" and not value:
        raise ValidationFailed("请选择要汇总的数值列", "Choose the column to aggregate", field="value")
    files = [str(p) for p in paths.read_paths(ds)] if ds.current_version else []
    if not files:
        raise ValidationFailed(f"数据集“{ds.title}”还没有数据", f"Dataset '{ds.title}' has no data yet")
    measure = "COUNT(*)" if agg == "count" else f'{agg.upper()}(CAST("{value}" AS DOUBLE))'
    key = f'"{group}"' if group else "NULL"
    if group and bucket:
        shown = {"hour": "'%m-%d %H:00'", "day": "'%Y-%m-%d'", "month": "'%Y-%m'"}[bucket]
        key = f"strftime(date_trunc('{bucket}', CAST(\"{group}\" AS TIMESTAMP)), {shown})"
    sql = f"SELECT {key} AS k, {measure} AS v FROM read_parquet(?) GROUP BY 1 ORDER BY 1"
    with duckdb.connect() as con:
        rows = con.execute(sql, [files]).fetchall()
    if group and bucket:
        rows = rows[-int(src.get("last") or 30) :]
    rows = rows[:MAX_ROWS] if not bucket else rows
    org = session.get(Org, ds.org_id)
    source = Source(
        SourceKind.open,
        f"{ds.title}（{org.name}）" if org else ds.title,
        f"dataset:{ds.id}@v{ds.current_version}",
        _iso(ds),
    )
    measure_title = (names[value].title if value and names[value].title else value) or "数量"
    categories = ["" if k is None else str(k) for k, _ in rows]
    values = [None if v is None else round(float(v), 2) for _, v in rows]
    return _shape(session, spec, source, categories, values, measure_title)


def _iso(ds: Dataset) -> str:
    at = ds.data_updated_at or ds.updated_at
    return at.isoformat() if at else ""


# --------------------------------------------------------------------------------------- release


def release_file(session: Session, file_id: Any) -> tuple[ReleaseFile, ReleaseRequest]:
    f = session.get(ReleaseFile, _int(file_id, "file_id"))
    if f is None:
        raise NotFound(f"出域文件 {file_id} 不存在", f"Released file {file_id} not found", field="file_id")
    req = session.get(ReleaseRequest, f.request_id)
    assert req is not None
    return f, req


def _release(session: Session, spec: WidgetSpec) -> Chart:
    f, req = release_file(session, spec.source.get("file_id"))
    if req.state != "released" or not f.released_path:
        raise ValidationFailed(
            f"出域申请 R-{req.id} 未处于“已出域”状态，其文件不能展示",
            f"Release request R-{req.id} is not released: its files cannot be shown",
            field="file_id",
            reason="not_released",
        )
    if not f.name.lower().endswith(".csv"):
        raise ValidationFailed(
            f"只能展示 CSV 表格（“{f.name}”不是）", f"Only CSV tables can be shown ('{f.name}' is not)"
        )
    text = Path(f.released_path).read_bytes().decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    if len(table) < 2:
        raise ValidationFailed(f"“{f.name}”没有数据行", f"'{f.name}' has no data rows")
    header, body = table[0], table[1:]
    source = Source(
        SourceKind.release,
        f"出域编号 R-{req.id}（{req.title or f.name}）",
        f"release:{req.id}/file:{f.id}",
        req.released_at.isoformat() if req.released_at else "",
    )
    if spec.kind == "table":
        rows = [[_cell(c) for c in r] for r in body[:MAX_ROWS]]
        return Chart(ChartKind.table, spec.title, source, unit=spec.unit, columns=header, rows=rows)
    label_col = _column(header, spec.source.get("label_column") or header[0], f.name)
    value_col = _column(header, spec.source.get("value_column") or header[-1], f.name)
    categories = [r[label_col] for r in body if len(r) > max(label_col, value_col)]
    values = [_number(r[value_col]) for r in body if len(r) > max(label_col, value_col)]
    return _shape(session, spec, source, categories, values, header[value_col])


def _column(header: list[str], name: Any, file_name: str) -> int:
    if str(name) not in header:
        raise ValidationFailed(
            f"“{file_name}”没有列“{name}”（有：{'、'.join(header)}）",
            f"'{file_name}' has no column '{name}' (it has {', '.join(header)})",
        )
    return header.index(str(name))


def _cell(text: str) -> Any:
    n = _number(text)
    return text if n is None else (int(n) if n == int(n) and "." not in text else n)


def _number(text: str) -> float | None:
    try:
        v = float(text.replace(",", ""))
    except ValueError:
        return None
    return v if v == v and abs(v) != float("inf") else None


# -------------------------------------------------------------------------------------------- dp


def metric(session: Session, metric_id: Any) -> ShowcaseMetric:
    m = session.get(ShowcaseMetric, _int(metric_id, "metric_id"))
    if m is None:
        raise NotFound(f"指标 {metric_id} 不存在", f"Metric {metric_id} not found", field="metric_id")
    return m


def _dp(session: Session, spec: WidgetSpec) -> Chart:
    m = metric(session, spec.source.get("metric_id"))
    if not m.result:
        raise ValidationFailed(
            f"差分隐私指标“{m.title}”还没有结果：请先刷新",
            f"DP metric '{m.title}' has no result yet: refresh it first",
            reason="no_result",
        )
    columns: list[str] = list(m.result["columns"])
    rows: list[list[Any]] = m.result["rows"]
    # the gateway's answer: {column: [[low, high] | None per row]} for each noisy column
    intervals: dict[str, list[Any]] = dict(m.result.get("intervals") or {})
    noisy = [c for c in columns if c in intervals]
    if not noisy:
        raise ValidationFailed(
            f"指标“{m.title}”没有带区间的数值列", f"Metric '{m.title}' has no noisy column"
        )
    want = spec.source.get("value_column")
    col = str(want) if want in noisy else noisy[0]
    j = columns.index(col)
    keys = [c for c, name in enumerate(columns) if name not in intervals]
    categories = [str(r[keys[0]]) if keys else "" for r in rows]
    values: list[float | None] = []
    low: list[float | None] = []
    high: list[float | None] = []
    texts: list[str] = []
    for r, bounds in zip(rows, intervals[col], strict=True):
        v = r[j]
        if v is None or bounds is None:
            values.append(None)
            low.append(None)
            high.append(None)
            texts.append("")
            continue
        rounded = round_to_interval(float(v), float(bounds[0]), float(bounds[1]))
        values.append(rounded.value)
        low.append(rounded.low)
        high.append(rounded.high)
        texts.append(f"{rounded.text}（{rounded.low_text}–{rounded.high_text}）")
    at = m.refreshed_at.isoformat() if m.refreshed_at else ""
    source = Source(SourceKind.dp, f"差分隐私统计（ε={m.epsilon:g}）：{m.title}", f"metric:{m.id}", at)
    # a bare SQL alias ("n") says nothing to a reader: the metric's title names the number instead
    label = m.title if col.isascii() and col.replace("_", "").isalnum() else col
    series = Series(label, values, low, high, texts)
    if spec.kind == "map":
        from countylab.showcase.maps import choropleth

        def by(seq: list[float | None]) -> dict[str, float | None]:
            return dict(zip(categories, seq, strict=True))

        return choropleth(
            session,
            level=str(spec.source.get("level") or "town"),
            values=by(values),
            low=by(low),
            high=by(high),
            title=spec.title,
            unit=spec.unit,
            source=source,
            series_name=label,
            texts=dict(zip(categories, texts, strict=True)),
        )
    return _finish(session, spec, source, categories, series)


# ------------------------------------------------------------------------------------------ shape


def _shape(
    session: Session,
    spec: WidgetSpec,
    source: Source,
    categories: list[str],
    values: list[float | None],
    series_name: str,
) -> Chart:
    if spec.kind == "map":
        from countylab.showcase.maps import choropleth

        return choropleth(
            session,
            level=str(spec.source.get("level") or "town"),
            values={c: v for c, v in zip(categories, values, strict=True) if c},
            title=spec.title,
            unit=spec.unit,
            source=source,
            series_name=series_name,
        )
    if spec.kind == "table":
        rows = [[n, v] for n, v in zip(_names(session, categories), values, strict=True)]
        return Chart(
            ChartKind.table, spec.title, source, unit=spec.unit, columns=["", series_name], rows=rows
        )
    return _finish(session, spec, source, categories, Series(series_name, values))


def _finish(session: Session, spec: WidgetSpec, source: Source, categories: list[str], s: Series) -> Chart:
    if spec.kind == "card":
        pick = _card_index(spec, categories, s.values)
        one = Series(
            s.name,
            [s.values[pick]],
            [s.low[pick]] if s.low else None,
            [s.high[pick]] if s.high else None,
            [s.texts[pick]] if s.texts else None,
        )
        label = _names(session, [categories[pick]])[0] if categories[pick] else ""
        return Chart(ChartKind.card, spec.title, source, unit=spec.unit, categories=[label], series=[one])
    if spec.kind == "table":
        rows = [
            [n, v] + ([lo, hi] if s.low else [])
            for n, v, lo, hi in zip(
                _names(session, categories), s.values, s.low or s.values, s.high or s.values, strict=True
            )
        ]
        columns = ["", s.name] + (["95% 下限", "95% 上限"] if s.low else [])
        return Chart(ChartKind.table, spec.title, source, unit=spec.unit, columns=columns, rows=rows)
    names = _names(session, categories)
    return Chart(
        ChartKind(spec.kind),
        spec.title,
        source,
        unit=spec.unit,
        categories=categories,
        category_names=names if names != categories else None,
        series=[s],
        note="95% 区间" if s.low else "",
    )


def _card_index(spec: WidgetSpec, categories: list[str], values: list[float | None]) -> int:
    if not categories:
        raise ValidationFailed(f"指标卡“{spec.title}”没有数", f"Figure card '{spec.title}' has no number")
    want = spec.source.get("category")
    if want:
        if str(want) not in categories:
            raise ValidationFailed(
                f"指标卡“{spec.title}”找不到分类“{want}”",
                f"Figure card '{spec.title}': no category '{want}'",
            )
        return categories.index(str(want))
    return len(categories) - 1  # the latest (time buckets sort ascending) or the only one


def _names(session: Session, codes: list[str]) -> list[str]:
    """Codes of a public key set shown by their names (town code → 城关镇)."""
    labels: dict[str, str] = {}
    for ks in catalog.key_sets(session).values():
        labels.update({str(k): str(v) for k, v in (ks.labels or {}).items()})
    return [labels.get(c, c) for c in codes]


def _int(value: Any, name: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValidationFailed(f"{name} 必须是整数", f"{name} must be an integer", field=name) from None
    if not 1 <= n <= 2**31 - 1:
        raise ValidationFailed(f"{name} 超出范围", f"{name} is out of range", field=name)
    return n


def release_of(source: dict[str, Any]) -> int | None:
    """The release-file id a widget depends on (for the withdrawn-release check)."""
    raw = source.get("file_id")
    return int(raw) if raw is not None else None


def released_file_ids(session: Session, file_ids: list[int]) -> set[int]:
    """Of ``file_ids``, the files whose request is still ``released`` (one query)."""
    if not file_ids:
        return set()
    rows = session.execute(
        select(ReleaseFile.id)
        .join(ReleaseRequest, ReleaseRequest.id == ReleaseFile.request_id)
        .where(ReleaseFile.id.in_(file_ids), ReleaseRequest.state == "released")
    ).scalars()
    return set(rows)
