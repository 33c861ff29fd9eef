"""The demo's public dashboard and the leader's big screen in real Chromium: every chart drawn
(canvases inked), the map with its visualMap legend, DP whiskers; the big screen at 1920×1080
rotates to the next dashboard without a reload and follows a data change live.  Screenshots go to
test-artifacts/ (dashboard-public.png, bigscreen-1.png, bigscreen-2.png)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from countylab.lab import Lab
from countylab.showcase.demo_dashboards import ELDERLY_SLUG
from countylab.storage.dashboard_models import BigScreen, Dashboard
from tests.browser import Session, live_server
from tests.showcase.dashboard_fixtures import *  # noqa: F403 - the fixtures dash_template and dash_lab

pytestmark = [pytest.mark.browser, pytest.mark.needs("browser")]


@pytest.fixture
def server(dash_lab: Lab) -> Iterator[tuple[str, Lab]]:
    with live_server(dash_lab) as url:
        yield url, dash_lab


def _inked(png: bytes) -> float:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20) or []
    bg = max(colours)[1]
    return sum(n for n, c in colours if c != bg) / (img.width * img.height)


def test_public_dashboard_draws_every_chart_and_the_map_legend(
    browser: Any, server: tuple[str, Lab], artifacts: Any
) -> None:
    url, _lab = server
    s = Session(browser, url, artifacts, viewport={"width": 1366, "height": 1000})
    s.go(f"/public/dashboards/{ELDERLY_SLUG}")
    s.page.locator(".dash-map [data-map-ready], .dash-map canvas").first.wait_for()
    s.page.wait_for_timeout(800)
    figures = s.page.locator("#dash-grid figure")
    kinds = figures.evaluate_all("(els) => els.map((e) => e.className.replace('dash-widget ', ''))")
    assert kinds == ["dash-map", "dash-card", "dash-card", "dash-table", "dash-bar", "dash-line"], kinds
    for kind in ("map", "bar", "line"):
        el = s.page.locator(f".dash-{kind} .dash-chart")
        assert el.locator("canvas").count() >= 1, kind
        assert _inked(el.screenshot()) > 0.03, f"{kind} chart is empty"
    option = s.page.locator(".dash-map .dash-chart").evaluate(
        "(el) => window.echarts.getInstanceByDom(el).getOption()"
    )
    assert len(option["visualMap"]) == 1  # the legend of the colour scale
    bar = s.page.locator(".dash-bar .dash-chart").evaluate(
        "(el) => window.echarts.getInstanceByDom(el).getOption()"
    )
    assert any(x["type"] == "custom" for x in bar["series"]), "DP bars carry interval whiskers"
    cards = s.page.locator(".dash-card .dash-figure-value").all_inner_texts()
    assert len(cards) == 2 and all(c.strip() for c in cards)
    assert "区间" in s.page.locator(".dash-card").first.inner_text()
    assert s.page.locator(".dash-table tbody tr").count() >= 2
    s.shot("dashboard-public")
    s.close()


def test_big_screen_rotates_and_follows_data_live(
    browser: Any, server: tuple[str, Lab], artifacts: Any
) -> None:
    url, lab = server
    with lab.tx() as db:
        screen = db.execute(select(BigScreen)).scalars().first()
        assert screen is not None
        screen.seconds = 5  # rotate quickly for the test
        sid, first, second = screen.id, screen.dashboard_ids[0], screen.dashboard_ids[1]
        titles = {d.id: d.title for d in db.execute(select(Dashboard)).scalars()}
    s = Session(browser, url, artifacts, viewport={"width": 1920, "height": 1080})
    s.login("leader")
    s.go(f"/bigscreen/{sid}")
    stage = s.page.locator("#bs-stage")
    s.page.locator(f"#bs-stage[data-dashboard='{first}']").wait_for()
    s.page.wait_for_timeout(1500)
    assert s.page.locator("#bs-title").inner_text() == titles[first]
    assert s.page.locator("nav, .sidebar").count() == 0  # no navigation on a lobby screen
    assert stage.locator("canvas").count() >= 2
    assert _inked(stage.screenshot()) > 0.05
    s.page.evaluate("window.__marker = 'same page'")
    s.shot("bigscreen-1")
    s.page.locator(f"#bs-stage[data-dashboard='{second}']").wait_for(timeout=12_000)
    s.page.wait_for_timeout(1500)
    assert s.page.locator("#bs-title").inner_text() == titles[second]
    assert s.page.evaluate("window.__marker") == "same page"  # rotated without a reload
    s.shot("bigscreen-2")
    with lab.tx() as db:  # a new title arrives through the poll (every 5 s here), still no reload
        d = db.get(Dashboard, second)
        assert d is not None
        d.title, d.data_version = "交通与环境（更新）", d.data_version + 1
    s.page.locator("#bs-title", has_text="更新").wait_for(timeout=15_000)
    assert s.page.evaluate("window.__marker") == "same page"
    s.close()
