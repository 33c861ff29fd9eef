"""The county map in a real browser (headless Chromium against uvicorn): the demo county's map
renders on a canvas with its legend, hovering an area shows the value with its 95% interval and
source, an area without a value says 无数据, the open-data points are drawn, and the operator's
import page shows the boundaries.  Screenshots land in ``test-artifacts/``."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from shapely.geometry import Point, shape

from countylab.bootstrap import setup_demo
from countylab.lab import Lab
from countylab.showcase import cache
from countylab.showcase.maps import boundaries, points
from tests.browser import Session, live_server
from tests.showcase.mapworld import MISSING, add_story
from tests.support import build_lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

POINT_LAYERS = ("air_quality", "traffic_counts")

TOOLTIP_TEXTS = """(el) => {
  const chart = window.echarts.getInstanceByDom(el);
  const out = [];
  chart.getZr().storage.getDisplayList(true).forEach((d) => {
    if (d.style && typeof d.style.text === "string") out.push(d.style.text);
  });
  return out.join("\\n");
}"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Lab, dict[str, float]]]:
    lab = build_lab(tmp_path_factory.mktemp("map-browser"), county_name="青禾县")
    report = setup_demo(lab, size="tiny")
    with lab.read() as s:
        fc = boundaries(s, "town")
    towns = {f["properties"]["code"]: f["properties"]["name"] for f in fc["features"]}
    values = add_story(lab, report_user(lab, "operator"), towns)
    cache.clear()
    try:
        with live_server(lab, demo_logins=report.logins) as url:
            yield url, lab, values
    finally:
        lab.close()


def report_user(lab: Lab, username: str) -> int:
    from sqlalchemy import select

    from countylab.storage.models import User

    with lab.read() as s:
        return int(s.execute(select(User.id).where(User.username == username)).scalar_one())


def _inside(lab: Lab, code: str) -> tuple[float, float]:
    """A spot well inside the town and away from every station and junction (they sit on top)."""
    with lab.read() as s:
        fc = boundaries(s, "town")
        spots = [(lon, lat) for layer in POINT_LAYERS for _n, lon, lat in points(s, layer).values()]
    poly = shape(next(f for f in fc["features"] if f["properties"]["code"] == code)["geometry"])
    inner = poly.buffer(-0.004)
    x0, y0, x1, y1 = inner.bounds
    grid = [Point(x0 + (x1 - x0) * i / 20, y0 + (y1 - y0) * j / 20) for i in range(21) for j in range(21)]
    best = max((p for p in grid if inner.contains(p)), key=lambda p: min(p.distance(Point(q)) for q in spots))
    return best.x, best.y


def _hover(s: Session, lonlat: tuple[float, float]) -> str:
    el = s.page.locator("#county-map")
    xy = el.evaluate(
        "(el, p) => window.echarts.getInstanceByDom(el).convertToPixel({geoIndex: 0}, p)", list(lonlat)
    )
    box = el.bounding_box()
    s.page.mouse.move(box["x"] + xy[0], box["y"] + xy[1])
    s.page.wait_for_timeout(400)
    return str(el.evaluate(TOOLTIP_TEXTS))


def _inked(png: bytes) -> tuple[int, float]:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20) or []
    bg = max(colours)[1]
    inked = sum(n for n, c in colours if c != bg)
    return len(colours), inked / (img.width * img.height)


def test_public_map_renders_with_legend_intervals_and_no_data(
    browser: Any, world: tuple[str, Lab, dict[str, float]], artifacts: Any
) -> None:
    url, lab, values = world
    s = Session(browser, url, artifacts, viewport={"width": 1280, "height": 1000})
    s.go("/public/map?level=town")
    keys = s.page.locator("[data-stat]").evaluate_all("(els) => els.map((e) => e.dataset.stat)")
    assert len(keys) >= 2  # the demo project's DP statistic and the test story
    labels = s.page.locator("[data-stat]").all_inner_texts()
    mine = keys[labels.index("各乡镇独居老人（测试）")]
    s.go(f"/public/map?level=town&stat={mine}")
    el = s.page.locator("#county-map[data-map-ready='1']")
    el.wait_for()
    assert el.get_attribute("data-map-areas") == "12" and el.get_attribute("data-map-valued") == "10"
    colours, share = _inked(el.screenshot())
    assert colours > 40 and share > 0.2, (colours, share)  # a drawn map, not an empty box
    option = el.evaluate("(el) => window.echarts.getInstanceByDom(el).getOption()")
    assert len(option["visualMap"]) == 1 and option["visualMap"][0]["max"] == max(values.values())
    assert set(option["legend"][0]["data"]) == {"空气质量监测站", "交通流量路口"}
    points = {
        x["name"]: len(x["data"]) for x in option["series"] if x["type"] in ("scatter", "effectScatter")
    }
    assert points == {"空气质量监测站": 8, "交通流量路口": 20}

    code = next(c for c in values)
    tip = _hover(s, _inside(lab, code))
    v = values[code]
    assert "95% 区间" in tip and f"[{v - 4.5:g}, {v + 4.5:g}]" in tip, tip
    assert "差分隐私统计（ε=0.5）" in tip and f"{v:.0f} 人" in tip
    s.shot("map-public-town-hover")
    tip = _hover(s, _inside(lab, MISSING[0]))
    assert "竹坞镇\n无数据" in tip, tip  # the hover tip (and the area's own label)
    s.shot("map-public-town-no-data")
    table = s.page.locator("#map-table").inner_text()
    assert "竹坞镇" in table and "无数据" in table

    s.go("/public/map?level=village")
    s.page.locator("#county-map[data-map-ready='1']").wait_for()
    assert s.page.locator("#county-map").get_attribute("data-map-areas") == "250"
    village = s.page.locator("#county-map").evaluate(
        "(el) => window.echarts.getInstanceByDom(el).getOption()"
    )
    borders = [x for x in village["series"] if x["type"] == "lines"]
    assert len(borders) == 1 and len(borders[0]["data"]) == 12  # the towns drawn over the villages
    s.shot("map-public-village")
    s.close()


def test_map_in_english_and_the_import_page(
    browser: Any, world: tuple[str, Lab, dict[str, float]], artifacts: Any
) -> None:
    url, _lab, _values = world
    s = Session(browser, url, artifacts, viewport={"width": 1280, "height": 900})
    s.go("/lang/en?next=/public/map")
    s.page.locator("#county-map[data-map-ready='1']").wait_for()
    assert "County map" in s.page.locator("h1").inner_text()
    s.shot("map-public-en")
    s.login("operator")
    s.go("/maps")
    s.page.locator("#level-town [data-map-ready='1']").wait_for()
    s.page.locator("#level-village [data-map-ready='1']").wait_for()
    assert "250" in s.page.locator("#level-village").inner_text()
    s.shot("map-admin")
    s.close()


def test_phone_sized_map(browser: Any, world: tuple[str, Lab, dict[str, float]], artifacts: Any) -> None:
    url, _lab, _values = world
    s = Session(browser, url, artifacts, viewport={"width": 390, "height": 844}, is_mobile=True)
    s.go("/public/map")
    el = s.page.locator("#county-map[data-map-ready='1']")
    el.wait_for()
    colours, share = _inked(el.screenshot())
    assert colours > 20 and share > 0.15
    s.shot("map-public-phone")
    s.close()
