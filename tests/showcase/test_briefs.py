"""Printed briefs (汇报材料): an A4 PDF whose first page, read back as an image, holds the Chinese
title, the sources and a drawn chart; DP numbers are printed with their interval."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from countylab.showcase import briefs, render_charts
from countylab.showcase.chartspec import Chart, ChartKind, Series, Source, SourceKind
from tests.pdfcheck import colours, first_page_png, inked_share, ocr_text, page_count

TOWNS = ["城关镇", "青溪镇", "白沙乡", "河口镇", "石门乡", "龙泉镇"]
DP = Source(SourceKind.dp, "差分隐私统计：独居老人", "metric:1", "2026-12-05T01:00:00Z")
RELEASE = Source(SourceKind.release, "出域编号 R-3", "release:3")
OPEN = Source(SourceKind.open, "空气质量监测（生态环境局）", "dataset:7", "2026-12-05T02:00:00Z")


def dp_bar(title: str = "各乡镇独居老人人数", *, intervals: bool = True) -> Chart:
    values: list[float | None] = [320, 210, None, 160, 95, 260]
    return Chart(
        ChartKind.bar,
        title,
        DP if intervals else RELEASE,
        unit="人",
        categories=TOWNS,
        series=[
            Series(
                "独居老人",
                values,
                low=[240, 150, None, 100, 40, 190] if intervals else None,
                high=[400, 270, None, 220, 150, 330] if intervals else None,
            )
        ],
    )


def line(*, band: bool) -> Chart:
    hours = [f"{h}时" for h in range(24)]
    values: list[float | None] = [60 + 20 * ((h % 12) / 12) for h in range(24)]
    return Chart(
        ChartKind.line,
        "空气质量指数",
        DP if band else OPEN,
        categories=hours,
        series=[
            Series(
                "AQI",
                values,
                low=[v - 15 for v in values if v is not None] if band else None,
                high=[v + 15 for v in values if v is not None] if band else None,
            )
        ],
    )


CARD = Chart(ChartKind.card, "已发布成果", RELEASE, unit="项", series=[Series("成果", [12])])
TABLE = Chart(
    ChartKind.table,
    "养老需求模型指标",
    RELEASE,
    columns=["指标", "数值"],
    rows=[["AUC", 0.81], ["准确率", 0.77]],
)


def square(x: float, y: float) -> list[list[list[float]]]:
    return [[[x, y], [x + 1, y], [x + 1, y + 1], [x, y + 1], [x, y]]]


BOUNDARIES = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"code": f"T{i}", "name": TOWNS[i], "level": "town"},
            "geometry": {"type": "Polygon", "coordinates": square(i % 3, i // 3)},
        }
        for i in range(6)
    ],
}
MAP = Chart(
    ChartKind.map,
    "各乡镇独居老人（地图）",
    DP,
    unit="人",
    level="town",
    categories=[f"T{i}" for i in range(6)],
    category_names=TOWNS,
    series=[
        Series(
            "独居老人",
            [320, 210, None, 160, 95, 260],
            low=[240, 150, None, 100, 40, 190],
            high=[400, 270, None, 220, 150, 330],
        )
    ],
)


def brief(*charts: Chart, title: str = "青禾县养老服务概览") -> briefs.Brief:
    return briefs.Brief(
        county="青禾县",
        title=title,
        kind="dashboard",
        charts=list(charts),
        summary="本看板展示全县养老服务的主要指标。",
        source_details={"metric:1": "ε = 0.5"},
        issued_at=datetime(2026, 12, 5, 17, 30, tzinfo=UTC),
    )


def png_ink(data: bytes) -> float:
    return inked_share(data)


def tinted_share(data: bytes) -> float:
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    return float((pixels < 248).mean())


def dark_share(data: bytes) -> float:
    """Share of near-black pixels: whiskers (#222) count, the blue bars (luminance ~100) do not."""
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    return float((pixels < 70).mean())


@pytest.mark.needs("tesseract")
def test_the_first_page_holds_the_chinese_title_the_sources_and_a_drawn_chart() -> None:
    pdf = briefs.render(brief(CARD, dp_bar(), line(band=False), TABLE))
    assert pdf.startswith(b"%PDF") and page_count(pdf) >= 1
    page = first_page_png(pdf)
    text = ocr_text(page)
    assert "青禾县养老服务概览" in text and "数据来源" in text
    assert "2026年12月6日" in text  # 17:30 UTC is the next morning in Beijing
    assert "区间" in text  # the DP source line and the interval table
    # a chart is drawn in the lower half of the page, in colour (a text page is grey on white)
    assert inked_share(page, (0.05, 0.45, 0.95, 0.85)) > 0.05
    text_only = first_page_png(briefs.render(brief(TABLE)))
    assert colours(page) > colours(text_only) + 50


@pytest.mark.needs("tesseract")
def test_a_dp_chart_prints_its_interval_and_a_plain_one_does_not() -> None:
    with_iv = first_page_png(briefs.render(brief(dp_bar())))
    without = first_page_png(briefs.render(brief(dp_bar(intervals=False))))
    assert "区间" in ocr_text(with_iv)
    assert "区间" not in ocr_text(without)
    # the whiskers themselves: the image with intervals holds more dark ink than the same bars without
    a = render_charts.png(dp_bar())
    b = render_charts.png(dp_bar(intervals=False))
    assert dark_share(a) > dark_share(b) + 0.002


def test_each_kind_is_drawn_as_a_real_image() -> None:
    for chart in (dp_bar(), line(band=True), CARD, TABLE, MAP):
        data = render_charts.png(chart, boundaries=BOUNDARIES)
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and image.size[0] >= 1200, chart.kind
        assert png_ink(data) > 0.005, f"{chart.kind} drew nothing"
    # a band around the line is drawn (light: counted as any non-white pixel)
    assert (
        tinted_share(render_charts.png(line(band=True)))
        > tinted_share(render_charts.png(line(band=False))) + 0.05
    )


def test_a_map_is_a_choropleth_with_a_hatched_missing_area_and_without_boundaries_ranked_bars() -> None:
    drawn = render_charts.png(MAP, boundaries=BOUNDARIES)
    assert colours(drawn) > 40  # shades of the colour scale and the legend bar
    # an area without a value (白沙乡) is hatched grey, not coloured as zero
    rgb = np.asarray(Image.open(io.BytesIO(drawn)).convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    grey = (abs(r - g) < 4) & (abs(g - b) < 4) & (r > 200) & (r < 245)
    assert grey.mean() > 0.01
    fallback = render_charts.png(MAP, boundaries=None)
    other_level = render_charts.png(MAP, boundaries={"type": "FeatureCollection", "features": []})
    assert png_ink(fallback) > 0.02 and fallback == other_level


def test_sources_name_every_source_once_with_epsilon_and_interval_for_dp() -> None:
    b = brief(CARD, dp_bar(), MAP, line(band=False), TABLE)
    lines = briefs.sources(b)
    assert [(s.kind, s.ref) for s in lines] == [
        ("release", "release:3"),
        ("dp", "metric:1"),
        ("open", "dataset:7"),
    ]
    dp = lines[1]
    assert "ε = 0.5" in dp.detail and "95% 区间" in dp.detail and dp.as_of == "2026-12-05 09:00"
    html = briefs.html(b)
    assert "出域编号 R-3" in html and "空气质量监测" in html and "[240, 400]" in html
    english = briefs.html(b, lang="en")
    assert "Data sources" in english and "95% interval" in english and "Beijing time" in english
    assert "Page " in briefs.stylesheet("en") and "第 " in briefs.stylesheet("zh-CN")


def test_user_text_is_escaped_and_cannot_fetch_anything() -> None:
    evil = brief(CARD, title="<img src='file:///etc/passwd'>报告")
    html = briefs.html(evil)
    assert "<img src='file" not in html and "&lt;img" in html
    assert briefs.render(evil).startswith(b"%PDF")


def test_the_file_name_carries_the_title_and_the_beijing_date() -> None:
    assert briefs.filename(brief(CARD, title="养老/服务:概览")) == "汇报材料-养老服务概览-20261206.pdf"
    assert briefs.filename(brief(CARD), "en").startswith("brief-")


values = st.lists(st.one_of(st.none(), st.floats(0, 1e6)), min_size=1, max_size=14)


@settings(max_examples=12, deadline=None)
@given(values, st.floats(0, 500))
def test_any_dp_bar_chart_renders(vals: list[float | None], spread: float) -> None:
    lows = [None if v is None else v - spread for v in vals]
    highs = [None if v is None else v + spread for v in vals]
    chart = Chart(
        ChartKind.bar,
        "任意",
        DP,
        categories=[f"第{i}组" for i in range(len(vals))],
        series=[Series("人数", vals, low=lows, high=highs)],
    )
    data = render_charts.png(chart)
    assert data.startswith(b"\x89PNG")
