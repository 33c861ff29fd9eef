"""Printed briefs (汇报材料): an A4 PDF of a dashboard or a project story, for a report to the city.

A brief is built from the SAME :class:`~countylab.showcase.chartspec.Chart` objects the pages draw
(the dashboards of ``showcase.dashboards``, the released charts of ``showcase.stories``), so the
paper can hold nothing the page may not show: the caller decides what is showable (published,
approved, released) and this module only lays it out.  Each chart is drawn server-side by
:mod:`countylab.showcase.render_charts`; tables stay HTML so their text stays text.

The title block names the county, the title, the date in Beijing time and every source of every
number (数据来源): release numbers, open datasets, DP statistics with ε and "95% 区间" — a reader in
the city must be able to ask where a figure came from.  Page numbers come from the printer's
``@page`` rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from countylab.i18n import normalise, translator
from countylab.labels import to_beijing
from countylab.showcase.chartspec import Chart, ChartKind, SourceKind

TEMPLATE = Path(__file__).resolve().parents[1] / "web" / "templates" / "brief_pdf.html"


@dataclass(frozen=True)
class Brief:
    """What one printed brief holds; everything in it is already cleared for its audience."""

    county: str
    title: str
    kind: str  # "dashboard" | "story": the words of the title block
    charts: Sequence[Chart]
    summary: str = ""
    facts: Sequence[tuple[str, str]] = ()  # label → value lines (organisation, scenario, period …)
    #: more words about a source, keyed by its ``ref`` ("metric:3" → "ε = 0.5"), from the caller's records
    source_details: Mapping[str, str] = field(default_factory=dict)
    issued_at: datetime | None = None  # UTC; default now
    reference: str = ""  # where it comes from (dashboard slug, story id), printed in the footer


@dataclass(frozen=True)
class SourceLine:
    kind: str
    label: str
    ref: str
    detail: str
    as_of: str


def sources(brief: Brief, lang: str = "zh-CN") -> list[SourceLine]:
    """Every distinct source of the brief's numbers, in order of first use, with its words."""
    t = translator(lang)
    seen: dict[tuple[str, str, str], SourceLine] = {}
    for chart in brief.charts:
        src = chart.source
        key = (src.kind.value, src.label, src.ref)
        if key in seen:
            continue
        bits = [t(f"brief.source.{src.kind.value}")]
        extra = brief.source_details.get(src.ref, "")
        if extra:
            bits.append(extra)
        if src.kind == SourceKind.dp:
            bits.append(t("brief.chart.interval"))
        seen[key] = SourceLine(src.kind.value, src.label, src.ref, " · ".join(bits), _as_of(src.as_of, lang))
    return list(seen.values())


def _as_of(value: str, lang: str) -> str:
    when = to_beijing(value) if value else None
    return when.strftime("%Y-%m-%d %H:%M") if when else ""


def _date_words(when: datetime, lang: str) -> str:
    local = to_beijing(when)
    assert local is not None
    if lang == "en":
        return local.strftime("%d %B %Y, %H:%M") + " (Beijing time)"
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}（北京时间）"


def interval_rows(chart: Chart) -> list[tuple[str, str, str, str]]:
    """Area/category, series, value, [low, high] of a DP chart: the intervals as text under its image."""
    from countylab.showcase.render_charts import fmt, shown

    names = chart.category_names or chart.categories
    out = []
    for s in chart.series:
        if s.low is None or s.high is None:
            continue
        for i, name in enumerate(names):
            if s.values[i] is None:
                continue
            out.append((str(name), s.name, shown(s, i), f"[{fmt(s.low[i])}, {fmt(s.high[i])}]"))
    return out


def html(brief: Brief, *, lang: str = "zh-CN", images: Mapping[int, str] | None = None) -> str:
    """The brief's HTML; ``images`` maps a chart's index to its asset name (``asset:<name>``)."""
    import jinja2

    lang = normalise(lang)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    issued = brief.issued_at or datetime.now(UTC)
    from countylab.showcase.render_charts import fmt, shown

    return env.get_template(TEMPLATE.name).render(
        t=translator(lang),
        lang=lang,
        brief=brief,
        date=_date_words(issued, lang),
        sources=sources(brief, lang),
        images=images or {},
        interval_rows=interval_rows,
        fmt=fmt,
        shown=shown,
        ChartKind=ChartKind,
    )


def stylesheet(lang: str) -> str:
    """Page furniture in the brief's language: running head and page numbers."""
    t = translator(lang)
    return (
        "@page { @bottom-center { content: "
        + _css_string(t("brief.page.before"))
        + " counter(page) "
        + _css_string(t("brief.page.middle"))
        + " counter(pages) "
        + _css_string(t("brief.page.after"))
        + "; font-size: 9pt; color: #666; } }\n"
    )


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(
    brief: Brief,
    *,
    lang: str = "zh-CN",
    boundaries: Mapping[str, Mapping[str, Any]] | None = None,
) -> bytes:
    """The brief as an A4 PDF.  ``boundaries`` maps a map level ("town", "village") to its GeoJSON."""
    from countylab.pdf import render_pdf
    from countylab.showcase import render_charts

    lang = normalise(lang)
    assets: dict[str, tuple[bytes, str]] = {}
    images: dict[int, str] = {}
    for i, chart in enumerate(brief.charts):
        if chart.kind in (ChartKind.table, ChartKind.card):
            continue  # printed as HTML: text stays text, long tables break across pages
        shape = (boundaries or {}).get(chart.level) if chart.kind == ChartKind.map else None
        data = render_charts.png(chart, boundaries=shape, lang=lang, titled=False)
        name = f"chart-{i}-{hashlib.sha256(data).hexdigest()[:8]}.png"
        assets[name] = (data, "image/png")
        images[i] = name
    return render_pdf(html(brief, lang=lang, images=images), assets=assets, stylesheet=stylesheet(lang))


def filename(brief: Brief, lang: str = "zh-CN") -> str:
    """``汇报材料-<title>-<YYYYMMDD>.pdf`` (Beijing date); characters a file system dislikes removed."""
    issued = to_beijing(brief.issued_at or datetime.now(UTC))
    assert issued is not None
    safe = "".join(c for c in brief.title if c not in '\\/:*?"<>|\r\n\t').strip() or "brief"
    return f"{translator(lang)('brief.file_prefix')}-{safe[:60]}-{issued:%Y%m%d}.pdf"
