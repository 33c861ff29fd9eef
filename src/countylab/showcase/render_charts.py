"""Server-side images of a :class:`~countylab.showcase.chartspec.Chart`, for printed briefs.

The browser draws a chart with ECharts (``static/chart.js``); a PDF cannot run JavaScript, so the
brief printer draws the SAME ``Chart`` object here with matplotlib (Agg backend, no display, no
network) and embeds the PNG.  Drawing from the one description is what keeps the printed page
and the screen honest with each other: a DP number gets its interval on paper too (whiskers on
bars, a band around a line, the interval under a figure card).

matplotlib's state (font cache, text layout) is not thread-safe and the web server renders from
a thread pool, so drawing is serialised by one lock; a chart takes ~50-150 ms.  Figures are built
with the object API (``Figure``), never ``pyplot``, so nothing global is left behind.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from countylab.i18n import translator
from countylab.showcase.chartspec import Chart, ChartKind, Series

#: the palette of ``static/chart.js``: the printed bars have the colours of the screen
PALETTE = ("#2f6fb0", "#d9822b", "#3c9d5d", "#8e5bb5", "#c24d4d", "#5a8f9c")
#: fonts tried in order (fontconfig names, as matplotlib's font_manager lists them)
FONTS = ["Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "Noto Serif CJK SC", "DejaVu Sans"]
#: width of the printable A4 column (174 mm) in inches, and the resolution of the images
WIDTH_IN = 6.85
DPI = 200

_lock = threading.Lock()
_configured = False


def _setup() -> None:
    """Agg and the CJK font stack, once per process (same values every time: safe to repeat)."""
    global _configured
    if _configured:
        return
    import matplotlib

    matplotlib.use("Agg", force=False)
    matplotlib.rcParams.update(
        {
            "font.family": "sans-serif",
            "font.sans-serif": FONTS,
            "axes.unicode_minus": False,  # U+2212 is missing from some CJK fonts
            "svg.fonttype": "none",
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    _configured = True


def fmt(value: float | None) -> str:
    """A number as a reader expects it: thousands separated, no needless decimals."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def shown(series: Series, i: int) -> str:
    """The value as the chart states it: its rounded text where the source gave one."""
    if series.texts is not None and series.texts[i] not in (None, ""):
        return str(series.texts[i])
    return fmt(series.values[i])


def has_interval(chart: Chart) -> bool:
    return any(
        s.low is not None and s.high is not None and any(v is not None for v in s.low) for s in chart.series
    )


def png(
    chart: Chart,
    *,
    boundaries: Mapping[str, Any] | None = None,
    lang: str = "zh-CN",
    width_in: float = WIDTH_IN,
    titled: bool = True,
) -> bytes:
    """The chart as a PNG (white background, ~174 mm wide at 200 dpi).

    ``boundaries`` is a GeoJSON FeatureCollection whose features carry ``properties.code`` (engineer
    E's county boundaries); a map without them is drawn as ranked bars of its areas, so a brief
    never loses a number because a boundary file is missing.  ``titled=False`` leaves the title
    out (the brief prints it as a heading above the image).
    """
    from matplotlib.figure import Figure

    t = translator(lang)
    with _lock:
        _setup()
        height = _height(chart, width_in)
        fig = Figure(figsize=(width_in, height), dpi=DPI, facecolor="white")
        if chart.kind == ChartKind.bar:
            _bar(fig, chart, t)
        elif chart.kind == ChartKind.line:
            _line(fig, chart, t)
        elif chart.kind == ChartKind.map:
            if boundaries and _features(boundaries, chart):
                _map(fig, chart, boundaries, t)
            else:
                _bar(fig, chart, t, horizontal=True)
        elif chart.kind == ChartKind.card:
            _card(fig, chart, t)
        else:
            _table(fig, chart)
        if not titled:
            for text in fig.texts[:1] if chart.kind in (ChartKind.map, ChartKind.card) else []:
                text.set_text("")
            for ax in fig.axes:
                ax.set_title("", loc="left")
            if chart.kind in (ChartKind.bar, ChartKind.line):
                fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=DPI, facecolor="white")
    return out.getvalue()


def _height(chart: Chart, width_in: float) -> float:
    if chart.kind == ChartKind.card:
        return 1.5
    if chart.kind == ChartKind.table:
        return min(9.0, 0.6 + 0.28 * (len(chart.rows or []) + 1))
    if chart.kind == ChartKind.map:
        return width_in * 0.62
    return width_in * 0.45


def _axis_labels(chart: Chart) -> list[str]:
    names = chart.category_names or chart.categories
    return [str(n) for n in names]


def _bar(fig: Any, chart: Chart, t: Any, *, horizontal: bool = False) -> None:
    """Grouped bars; whiskers (95% interval) where low/high are given; missing values marked 无数据."""
    ax = fig.add_subplot(1, 1, 1)
    labels = _axis_labels(chart)
    n = len(labels)
    count = max(1, len(chart.series))
    width = 0.7 / count
    missing_word = t("brief.chart.no_data")
    for k, s in enumerate(chart.series):
        colour = PALETTE[k % len(PALETTE)]
        pos = [i - 0.35 + width * (k + 0.5) for i in range(n)]
        vals = [v if v is not None else 0.0 for v in s.values]
        draw = ax.barh if horizontal else ax.bar
        bars = draw(pos, vals, width * 0.92, color=colour, label=s.name if count > 1 else None)
        if s.low is not None and s.high is not None:
            lo = [
                max(0.0, v - lw) if v is not None and lw is not None else math.nan
                for v, lw in zip(s.values, s.low, strict=True)
            ]
            hi = [
                max(0.0, h - v) if v is not None and h is not None else math.nan
                for v, h in zip(s.values, s.high, strict=True)
            ]
            centres = list(pos)
            err = [lo, hi]
            kw: dict[str, Any] = {
                "fmt": "none",
                "ecolor": "#222",
                "elinewidth": 1.3,
                "capsize": 4,
                "zorder": 5,
            }
            if horizontal:
                ax.errorbar(vals, centres, xerr=err, **kw)
            else:
                ax.errorbar(centres, vals, yerr=err, **kw)
        for i in range(len(bars)):
            if s.values[i] is None:
                x, y = (0, pos[i]) if horizontal else (pos[i], 0)
                ax.text(
                    x,
                    y,
                    missing_word,
                    color="#888",
                    fontsize=7,
                    ha="left" if horizontal else "center",
                    va="center" if horizontal else "bottom",
                    rotation=0 if horizontal else 90,
                )
            elif n <= 16:
                top = s.high[i] if s.high is not None and s.high[i] is not None else s.values[i]
                if horizontal:
                    ax.annotate(
                        shown(s, i),
                        (top, pos[i]),
                        xytext=(4, 0),
                        textcoords="offset points",
                        fontsize=7,
                        va="center",
                        ha="left",
                    )
                else:
                    ax.annotate(
                        shown(s, i),
                        (pos[i], top),
                        xytext=(0, 3),
                        textcoords="offset points",
                        fontsize=7,
                        ha="center",
                        va="bottom",
                    )
    ticks = list(range(n))
    if horizontal:
        ax.set_yticks(ticks, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(chart.unit, fontsize=8)
    else:
        ax.set_xticks(
            ticks, labels, fontsize=8, rotation=35 if n > 6 else 0, ha="right" if n > 6 else "center"
        )
        ax.set_ylabel(chart.unit, fontsize=8)
    ax.tick_params(labelsize=8)
    _legend(ax, chart, t, whiskers=True)
    ax.set_title(chart.title, fontsize=11, loc="left")
    fig.tight_layout()


def _line(fig: Any, chart: Chart, t: Any) -> None:
    """One line per series; a shaded band between low and high where the numbers are DP."""
    ax = fig.add_subplot(1, 1, 1)
    labels = _axis_labels(chart)
    xs = list(range(len(labels)))
    for k, s in enumerate(chart.series):
        colour = PALETTE[k % len(PALETTE)]
        ys = [v if v is not None else math.nan for v in s.values]
        ax.plot(xs, ys, color=colour, marker="o", markersize=3, linewidth=1.6, label=s.name)
        if s.low is not None and s.high is not None:
            lo = [v if v is not None else math.nan for v in s.low]
            hi = [v if v is not None else math.nan for v in s.high]
            ax.fill_between(xs, lo, hi, color=colour, alpha=0.22, linewidth=0)
    step = max(1, len(labels) // 12)
    ax.set_xticks(
        xs[::step],
        labels[::step],
        fontsize=8,
        rotation=30 if len(labels) > 8 else 0,
        ha="right" if len(labels) > 8 else "center",
    )
    ax.set_ylabel(chart.unit, fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    _legend(ax, chart, t, whiskers=False)
    ax.set_title(chart.title, fontsize=11, loc="left")
    fig.tight_layout()


def _legend(ax: Any, chart: Chart, t: Any, *, whiskers: bool) -> None:
    """Series names when there are several, and the interval's meaning when one is drawn."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles, names = ax.get_legend_handles_labels()
    if len(chart.series) < 2:
        handles, names = [], []
    if has_interval(chart):
        if whiskers:
            handles.append(Line2D([0], [0], color="#222", linewidth=1.3, marker="_", markersize=8))
        else:
            handles.append(Patch(color=PALETTE[0], alpha=0.22))
        names.append(t("brief.chart.interval"))
    if handles:
        ax.legend(handles, names, fontsize=8, frameon=False, loc="best")


def _card(fig: Any, chart: Chart, t: Any) -> None:
    """One figure, large, with its unit and (DP) its interval beneath."""
    s = chart.series[0]
    fig.text(0.03, 0.80, chart.title, fontsize=11, color="#444", va="top")
    fig.text(0.03, 0.42, shown(s, 0), fontsize=30, weight="bold", color=PALETTE[0], va="center")
    fig.text(0.03 + 0.03 * len(shown(s, 0)) + 0.02, 0.40, chart.unit, fontsize=12, color="#444", va="center")
    if s.low is not None and s.high is not None and s.low[0] is not None and s.high[0] is not None:
        fig.text(
            0.03,
            0.1,
            f"{t('brief.chart.interval')} [{fmt(s.low[0])}, {fmt(s.high[0])}]",
            fontsize=9,
            color="#333",
        )


def _table(fig: Any, chart: Chart) -> None:
    ax = fig.add_subplot(1, 1, 1)
    ax.axis("off")
    rows = [
        [fmt(c) if isinstance(c, int | float) and not isinstance(c, bool) else str(c) for c in r]
        for r in chart.rows or []
    ]
    table = ax.table(
        cellText=rows or [[""] * len(chart.columns or [""])],
        colLabels=chart.columns,
        loc="upper center",
        cellLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    for (r, _c), cell in table.get_celld().items():
        cell.set_edgecolor("#999")
        if r == 0:
            cell.set_facecolor("#eef2f7")
    ax.set_title(chart.title, fontsize=11, loc="left")


def _features(boundaries: Mapping[str, Any], chart: Chart) -> list[Mapping[str, Any]]:
    """The boundary features of the chart's level that carry a code."""
    out = []
    for f in boundaries.get("features") or []:
        props = f.get("properties") or {}
        if props.get("code") is None or not f.get("geometry"):
            continue
        if props.get("level") not in (None, "", chart.level):
            continue
        out.append(f)
    return out


def _rings(geometry: Mapping[str, Any]) -> list[Sequence[Sequence[float]]]:
    """Exterior and hole rings of a Polygon or MultiPolygon (even-odd fill draws the holes)."""
    if geometry.get("type") == "Polygon":
        return list(geometry["coordinates"])
    if geometry.get("type") == "MultiPolygon":
        return [ring for poly in geometry["coordinates"] for ring in poly]
    return []


def _label_point(geometry: Mapping[str, Any]) -> tuple[float, float]:
    """A point inside the area (shapely's representative point: inside even for a crescent)."""
    from shapely.geometry import shape

    p = shape(geometry).representative_point()
    return float(p.x), float(p.y)


def _map(fig: Any, chart: Chart, boundaries: Mapping[str, Any], t: Any) -> None:
    """A choropleth: areas coloured by value (legend bar), areas without a value grey and hatched."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    ax = fig.add_axes((0.02, 0.04, 0.78, 0.86))
    ax.set_aspect("equal")
    ax.axis("off")
    s = chart.series[0]
    by_code = {c: i for i, c in enumerate(chart.categories)}
    names = chart.category_names or chart.categories
    values = [v for v in s.values if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    norm = Normalize(lo, hi) if lo < hi else Normalize(lo - 1, hi + 1)

    blues = colormaps["Blues"]
    cmap = ListedColormap([blues(0.15 + 0.85 * k / 255) for k in range(256)])  # the palest blue is visible
    small = chart.level == "town"
    for f in _features(boundaries, chart):
        code = str(f["properties"]["code"])
        rings = _rings(f["geometry"])
        if not rings:
            continue
        verts: list[tuple[float, float]] = []
        codes: list[Any] = []
        for ring in rings:
            pts = [(float(p[0]), float(p[1])) for p in ring]
            verts.extend(pts)
            codes.extend([MplPath.MOVETO] + [MplPath.LINETO] * (len(pts) - 1))
        path = MplPath(verts, codes)
        i = by_code.get(code)
        value = s.values[i] if i is not None else None
        if value is None:
            patch = PathPatch(path, facecolor="#eeeeee", edgecolor="#999", hatch="///", linewidth=0.4)
        else:
            patch = PathPatch(path, facecolor=cmap(norm(value)), edgecolor="white", linewidth=0.6)
        ax.add_patch(patch)
        if small and i is not None:
            x, y = _label_point(f["geometry"])
            label = f"{names[i]}\n{shown(s, i) if value is not None else t('brief.chart.no_data')}"
            dark = value is not None and norm(value) > 0.6
            ax.text(x, y, label, fontsize=7, ha="center", va="center", color="white" if dark else "#111")
    ax.autoscale_view()
    bar_ax = fig.add_axes((0.84, 0.2, 0.025, 0.55))
    sm = ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(sm, cax=bar_ax)
    cb.ax.tick_params(labelsize=7)
    cb.set_label(chart.unit, fontsize=8)
    fig.text(0.02, 0.95, chart.title, fontsize=11, va="top")
    if any(v is None for v in s.values):
        from matplotlib.patches import Patch

        hatch = Patch(facecolor="#eeeeee", edgecolor="#999", hatch="///", label=t("brief.chart.no_data"))
        fig.legend(handles=[hatch], loc="lower right", fontsize=7, frameon=False)
