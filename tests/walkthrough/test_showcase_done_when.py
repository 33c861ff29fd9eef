"""Issue 14's "Done when", end to end in real Chromium on the tiny demo county (``make demo``'s
world, every demo step): the leader opens the public pages and the big screen, sees the county map
with released and DP figures and the two project stories, and prints an A4 brief; then every
public page (HTML and JSON) is scanned for anything traceable to an individual.

Screenshots ``done14-*.png`` feed the release note and the leader's part of the tutorial.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from countylab.showcase import cache, public_scan
from countylab.showcase.demo_dashboards import ELDERLY_SLUG
from countylab.showcase.open_data import is_open
from countylab.storage.dashboard_models import BigScreen
from countylab.storage.models import Dataset
from countylab.web.app import create_app, iter_api_routes
from tests.browser import Session
from tests.pdfcheck import colours, first_page_png, inked_share, ocr_text
from tests.walkthrough.world import Demo, demo_county

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_county(tmp_path_factory.mktemp("done14")) as d:
        yield d


def shot(s: Session, name: str, *, full: bool = True) -> Path:
    path = s.artifacts / f"done14-{name}.png"
    s.page.evaluate("window.scrollTo(0, 0)")
    s.page.screenshot(path=str(path), full_page=full)
    return path


def _inked(png: bytes) -> float:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    counts = img.getcolors(maxcolors=1 << 20) or []
    bg = max(counts)[1]
    return sum(n for n, c in counts if c != bg) / (img.width * img.height)


def _pdf_text(pdf: bytes) -> str:
    doc = pypdfium2.PdfDocument(pdf)
    try:
        return "".join("".join(doc[i].get_textpage().get_text_range().split()) for i in range(len(doc)))
    finally:
        doc.close()


def test_the_leader_shows_the_county_and_prints_a_brief(browser: Any, demo: Demo, artifacts: Path) -> None:
    # 1. from the leader's home, the public portal: overview figures, scenarios, notices, stories
    s = demo.session(browser, "leader", artifacts)
    home = s.page.locator("main").inner_text()
    assert "成果展示" in home, home[:400]
    s.go("/public")
    overview = s.page.locator("#overview").inner_text()
    assert "数据集" in overview or "数据" in overview
    stories = s.page.locator("#stories").inner_text()
    assert "养老" in stories and ("估产" in stories or "作物" in stories), stories
    shot(s, "01-public-home")

    # 2. the two project stories, each with its released charts
    s.go("/public/projects")
    cards = s.page.locator("main a[href^='/public/projects/']")
    hrefs = sorted({h for h in cards.evaluate_all("(els) => els.map((e) => e.getAttribute('href'))") if h})
    story_hrefs = [h for h in hrefs if h.rstrip("/").rsplit("/", 1)[1].isdigit()]
    assert len(story_hrefs) == 2, hrefs
    shot(s, "02-project-stories")
    s.go(story_hrefs[0])
    s.page.locator(".sc-chart canvas, .sc-chart table").first.wait_for()
    s.page.wait_for_timeout(600)
    assert "区间" in s.page.locator("main").inner_text() or s.page.locator(".sc-chart table").count()
    shot(s, "03-project-story")

    # 3. the county map: a DP statistic by town with its legend, open-data points
    s.go("/public/map")
    s.page.locator("#county-map canvas").first.wait_for()
    s.page.wait_for_timeout(1200)
    assert _inked(s.page.locator("#county-map").screenshot()) > 0.05, "the map is empty"
    option = s.page.locator("#county-map").evaluate("(el) => window.echarts.getInstanceByDom(el).getOption()")
    assert len(option["visualMap"]) == 1  # the legend
    table = s.page.locator("#map-table").inner_text()
    assert "区间" in table or "±" in table, table[:300]
    shot(s, "04-county-map")

    # 4. the published dashboard: DP figures with intervals, the released model metrics, the map
    s.go(f"/public/dashboards/{ELDERLY_SLUG}")
    s.page.locator(".dash-map canvas").first.wait_for()
    s.page.wait_for_timeout(1200)
    grid = s.page.locator("#dash-grid")
    assert "区间" in grid.inner_text()
    assert _inked(s.page.locator(".dash-map .dash-chart").screenshot()) > 0.03
    shot(s, "05-public-dashboard")

    # 5. prints the A4 brief from the dashboard page: Chinese title, sources, intervals, a chart
    href = s.page.locator("#brief-link").get_attribute("href")
    assert href and s.page.locator("#brief-link").inner_text().startswith("打印汇报材料")
    got = s.context.request.get(demo.url + href)  # the browser's own request (its cookies), as the link opens
    assert got.ok and got.headers["content-type"] == "application/pdf"
    pdf = got.body()
    (artifacts / "done14-brief.pdf").write_bytes(pdf)
    assert pdf[:5] == b"%PDF-"
    text = _pdf_text(pdf)
    assert "数据来源" in text and "95%区间" in text, text[:300]
    page = first_page_png(pdf)
    (artifacts / "done14-07-brief-page1.png").write_bytes(page)
    width, height = Image.open(io.BytesIO(page)).size
    assert abs(height / width - 297 / 210) < 0.01  # A4 portrait
    assert "青禾县" in ocr_text(page)
    assert colours(page) > 150 and inked_share(page) > 0.02  # a chart in colour, not a blank page
    s.close()

    # 6. the big screen (驾驶舱) at 1920×1080
    with demo.lab.read() as db:
        screen_id = db.execute(select(BigScreen.id)).scalars().first()
    assert screen_id is not None
    big = Session(browser, demo.url, artifacts, viewport={"width": 1920, "height": 1080})
    big.login("leader")
    big.go("/bigscreen")
    shot(big, "06a-bigscreen-list")
    big.go(f"/bigscreen/{screen_id}")
    stage = big.page.locator("#bs-stage")
    big.page.locator("#bs-stage canvas").first.wait_for()
    big.page.wait_for_timeout(2000)
    assert stage.locator("canvas").count() >= 2 and _inked(stage.screenshot()) > 0.05
    shot(big, "06-bigscreen", full=False)
    big.close()


def test_nothing_on_a_public_page_leads_to_a_person(demo: Demo) -> None:
    """The privacy scan (engineer D's) over every public page this demo lab serves, logged out."""
    lab = demo.lab
    with lab.read() as s:
        opened = [d.name for d in s.execute(select(Dataset)).scalars() if is_open(d)]
    forbidden = public_scan.forbidden_values(lab.settings.seed_dir, opened)
    assert len(forbidden) > 100
    cache.clear()
    app = create_app(lab)
    client = TestClient(app, raise_server_exceptions=False)
    starts = sorted(
        {
            r.path
            for r in iter_api_routes(app)
            if "GET" in r.methods and r.path.startswith("/public") and "{" not in r.path
        }
    )

    def get(url: str) -> tuple[int, str]:
        resp = client.get(url, follow_redirects=False)
        assert resp.status_code < 500, (url, resp.text[:300])
        return resp.status_code, resp.text

    pages = public_scan.crawl(get, starts)
    for must in (
        "/public",
        "/public/map",
        "/public/notices",
        "/public/scenarios",
        f"/public/dashboards/{ELDERLY_SLUG}",
    ):
        assert must in pages, sorted(pages)
    findings = public_scan.scan(pages, forbidden)
    assert findings == [], "\n".join(f"{f.url}: {f.kind} {f.value!r} ({f.source})" for f in findings[:20])
