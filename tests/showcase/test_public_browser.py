"""The public portal in real Chromium, on a phone and on a desktop: every public page loads with
no console error (CSP included), the story and gallery charts draw on a non-empty canvas, the
page fits the phone's width, and the home page loads no chart library.  Screenshots land in
``test-artifacts/`` (portal-<viewport>-<page>.png)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from countylab.bootstrap import setup_demo
from countylab.lab import Lab
from countylab.showcase import cache
from countylab.storage.models import Project
from tests.browser import Session, live_server
from tests.support import build_lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}

INKED = """(fig) => {
  const c = fig.querySelector('canvas');
  if (!c || !c.width || !c.height) return 0;
  const ctx = c.getContext('2d');
  const data = ctx.getImageData(0, 0, c.width, c.height).data;
  let inked = 0;
  for (let i = 3; i < data.length; i += 16) if (data[i] > 0) inked++;
  return inked;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    lab: Lab = build_lab(tmp_path_factory.mktemp("portal-browser"), county_name="青禾县")
    report = setup_demo(lab, size="tiny")
    with lab.read() as s:
        ids = {slug: pid for slug, pid in s.execute(select(Project.slug, Project.id))}
    cache.clear()
    try:
        with live_server(lab, demo_logins=report.logins) as url:
            yield url, {slug: str(pid) for slug, pid in ids.items()}
    finally:
        lab.close()


def _pages(projects: dict[str, str], page: Any, base: str) -> list[str]:
    pages = ["/public", "/public/projects", "/public/gallery", "/public/open-data"]
    pages += [
        f"/public/projects/{projects['elderly-care-demand']}",
        f"/public/projects/{projects['crop-yield']}",
    ]
    page.goto(base + "/public/gallery")
    pages += sorted(
        set(
            page.eval_on_selector_all(
                "a[href^='/public/gallery/']", "els => els.map(e => e.getAttribute('href'))"
            )
        )
    )
    for other in ("/public/scenarios", "/public/notices", "/public/map", "/public/dashboards"):
        if page.request.get(base + other).status == 200:  # other parts' pages, once they exist
            pages.append(other)
    return pages


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_public_page_on_phone_and_desktop(
    site: tuple[str, dict[str, str]], browser: Any, artifacts: Any, viewport: str
) -> None:
    base, projects = site
    session = Session(browser, base, artifacts, viewport=VIEWPORTS[viewport])
    page = session.page
    drawn = 0
    for path in _pages(projects, page, base):
        resp = session.go(path)
        assert resp is not None and resp.status == 200, path
        page.wait_for_load_state("load")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORTS[viewport]["width"] + 1, f"{path} is {width}px wide on a {viewport}"
        figures = page.locator("figure.sc-chart:has(.sc-canvas)")
        for i in range(figures.count()):
            fig = figures.nth(i)
            fig.locator("canvas").first.wait_for(state="attached")
            page.wait_for_function(
                "(f) => f.querySelector('.sc-canvas').dataset.drawn === '1'", arg=fig.element_handle()
            )
            assert fig.evaluate(INKED) > 200, f"empty chart on {path}"
            drawn += 1
        name = path.strip("/").replace("/", "-") or "home"
        session.shot(f"portal-{viewport}-{name}")
    assert drawn >= 3  # the crop bar chart, the DP bars with whiskers, the gallery's bar chart
    scripts = None
    session.go("/public")
    scripts = page.eval_on_selector_all("script[src]", "els => els.map(e => e.getAttribute('src'))")
    assert not any("echarts" in s for s in scripts), scripts
    assert page.locator("[data-figure=datasets]").inner_text().strip() != "0"
    session.close()
