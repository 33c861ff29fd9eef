"""The one chart component (static/chart.js: ``countylab.chart.draw(el, spec)``) in real Chromium:
every kind of :class:`~countylab.showcase.chartspec.Chart` draws on a canvas (or as a table), and
every chart's PNG button downloads a real PNG named after the chart.

Screenshots: ``$COUNTYLAB_TEST_ARTIFACTS/chart-component-*.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from countylab.i18n import catalog
from countylab.showcase.chartspec import Chart, ChartKind, Series, Source, SourceKind
from tests.browser import Session, live_server
from tests.support import build_lab

ZH = catalog("zh-CN")
pytestmark = [pytest.mark.browser, pytest.mark.slow]
TOWNS = ["城关镇", "青溪镇", "白沙乡", "河口镇", "石门乡"]
DP = Source(SourceKind.dp, "差分隐私统计", "metric:1")
OPEN = Source(SourceKind.open, "空气质量监测", "dataset:7")

SPECS = {
    "bar": Chart(
        ChartKind.bar,
        "各乡镇独居老人",
        DP,
        unit="人",
        categories=TOWNS,
        series=[
            Series(
                "独居老人",
                [320, 210, None, 160, 95],
                low=[240, 150, None, 100, 40],
                high=[400, 270, None, 220, 150],
            )
        ],
    ),
    "line": Chart(
        ChartKind.line,
        "空气质量指数",
        DP,
        categories=[f"{h}时" for h in range(12)],
        series=[
            Series(
                "AQI",
                [50.0 + h for h in range(12)],
                low=[40.0 + h for h in range(12)],
                high=[60.0 + h for h in range(12)],
            )
        ],
    ),
    "card": Chart(
        ChartKind.card, "独居老人总数", DP, unit="人", series=[Series("n", [785], low=[700], high=[870])]
    ),
    "table": Chart(
        ChartKind.table,
        "养老需求模型指标",
        Source(SourceKind.release, "出域编号 R-3", "release:3"),
        columns=["指标", "数值"],
        rows=[["AUC", 0.81], ["准确率", 0.77]],
    ),
    "map": Chart(
        ChartKind.map,
        "独居老人（乡镇）",
        DP,
        level="town",
        categories=["T1", "T2"],
        category_names=["城关镇", "青溪镇"],
        series=[Series("独居老人", [320, 210], low=[240, 150], high=[400, 270])],
    ),
}

#: non-blank pixels on the canvas inside the element with this id (``dark``: near-black ones only,
#: which the whiskers (#333) are and the blue bars are not)
INKED = """(id, dark) => {
  const c = document.querySelector('#' + id + ' canvas');
  if (!c) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const limit = dark ? 80 : 235;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0 && Math.max(d[i], d[i + 1], d[i + 2]) < limit) n++;
  }
  return n;
}"""
PLAIN = """(spec) => {
  const el = document.createElement('div');
  el.id = 'chart-plain';
  el.style.width = '640px';
  document.body.appendChild(el);
  window.countylab.chart.draw(el, spec, { height: 300, exportButton: false });
}"""

SETUP = """([specs, words]) => {
  const w = document.createElement('script');
  w.type = 'application/json';
  w.id = 'countylab-chart-words';
  w.textContent = JSON.stringify(words);
  document.body.appendChild(w);
  const out = {};
  for (const [kind, spec] of Object.entries(specs)) {
    const box = document.createElement('section');
    const el = document.createElement('div');
    el.id = 'chart-' + kind;
    el.style.width = '640px';
    box.appendChild(el);
    document.body.appendChild(box);
    const inst = window.countylab.chart.draw(el, spec, { height: kind === 'card' ? 160 : 300 });
    out[kind] = !!inst;
  }
  return out;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    lab = build_lab(tmp_path_factory.mktemp("chartcomp"), county_name="青禾县")
    try:
        with live_server(lab) as url:
            yield url
    finally:
        lab.close()


def open_component(browser, server: str, artifacts: Path) -> Session:
    s = Session(browser, server, artifacts, viewport={"width": 800, "height": 1000}, accept_downloads=True)
    s.go("/login")
    s.page.add_script_tag(url="/static/vendor/echarts.min.js")
    s.page.add_script_tag(url="/static/chart.js")
    words = {
        "interval": ZH["chart.interval"],
        "noData": ZH["chart.no_data"],
        "exportPng": ZH["chart.export_png"],
    }
    drawn = s.page.evaluate(SETUP, [{k: c.to_dict() for k, c in SPECS.items()}, words])
    assert drawn == {k: True for k in SPECS}
    return s


def test_every_kind_draws(browser, server, artifacts) -> None:
    s = open_component(browser, server, artifacts)
    for kind in ("bar", "line", "card", "map"):  # map: ranked bars on a page without static/map.js
        s.page.wait_for_function(f"({INKED})('chart-{kind}', false) > 1500")
    # whiskers: the bar chart with intervals has more ink than the same bars without them
    plain = SPECS["bar"].to_dict()
    plain["series"][0]["low"] = plain["series"][0]["high"] = None
    plain["source"]["kind"] = "release"
    more = s.page.evaluate(f"({INKED})('chart-bar', true)")
    s.page.evaluate(PLAIN, plain)
    less = s.page.evaluate(f"({INKED})('chart-plain', true)")
    assert more > less + 200, (more, less)
    # the table stays text; the card states the interval in the page's words
    assert s.page.locator("#chart-table table th").all_inner_texts() == ["指标", "数值"]
    assert s.page.locator("#chart-table td").nth(1).inner_text() == "0.81"
    # one PNG button per chart, in the page language
    assert s.page.locator(".chart-export").count() == len(SPECS)
    assert set(s.page.locator(".chart-export").all_inner_texts()) == {ZH["chart.export_png"]}
    s.shot("chart-component-kinds")
    s.close()


@pytest.mark.parametrize("kind", ["bar", "line", "card", "table"])
def test_png_export_downloads_a_real_png_named_after_the_chart(
    browser, server, artifacts, kind, tmp_path
) -> None:
    s = open_component(browser, server, artifacts)
    if kind != "table":
        s.page.wait_for_function(f"({INKED})('chart-{kind}', false) > 1500")
    with s.page.expect_download() as info:
        s.page.locator(f"#chart-{kind} + .chart-tools .chart-export").click()
    download = info.value
    assert download.suggested_filename == f"{SPECS[kind].title}.png"
    path = tmp_path / "chart.png"
    download.save_as(path)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= 600  # drawn at twice the screen's pixels
        pixels = np.asarray(image.convert("L"))
    assert (pixels < 200).mean() > 0.003, "the PNG is blank"
    assert (pixels > 250).mean() > 0.3, "the PNG has a white background"
    (artifacts / f"chart-component-export-{kind}.png").write_bytes(path.read_bytes())
    s.close()


def test_file_names_drop_characters_file_systems_refuse(browser, server, artifacts) -> None:
    s = open_component(browser, server, artifacts)
    names = s.page.evaluate(
        "(ts) => ts.map((t) => window.countylab.chart.fileName(t))", ['a/b:c*?"<>|', "", "  空  "]
    )
    assert names == ["a b c.png", "chart.png", "空.png"]
    s.close()
