"""Briefs as downloads from a demo lab: the public dashboard and project story print as A4 PDFs
holding what their pages show (the map drawn, DP intervals stated); drafts, withdrawn results and
readers without ``showcase.view`` get nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pypdfium2
import pytest
from sqlalchemy import select

from countylab.identity.access import SYSTEM
from countylab.showcase import withdrawal
from countylab.storage.dashboard_models import Dashboard, DashboardWidget
from countylab.storage.showcase_models import Story
from tests.pdfcheck import colours, first_page_png, ocr_text, page_count
from tests.showcase.portal_fixtures import demo_lab
from tests.support import api_client, browser_login

pytestmark = [pytest.mark.slow]


def pdf_text(pdf: bytes) -> str:
    """Every page's text as the PDF holds it (WeasyPrint embeds real text: no OCR needed)."""
    doc = pypdfium2.PdfDocument(pdf)
    try:
        return "".join("".join(doc[i].get_textpage().get_text_range().split()) for i in range(len(doc)))
    finally:
        doc.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    lab = demo_lab(tmp_path_factory.mktemp("briefs"))
    with lab.read() as s:
        published = s.execute(select(Dashboard).where(Dashboard.state == "published").order_by(Dashboard.id))
        dashboards = [(d.id, d.slug, d.title) for d in published.scalars()]
        story = (
            s.execute(select(Story).where(Story.state == "published").order_by(Story.id)).scalars().first()
        )
        assert story is not None and dashboards
        with_map = [
            d
            for d in dashboards
            if s.execute(
                select(DashboardWidget.id).where(
                    DashboardWidget.dashboard_id == d[0], DashboardWidget.kind == "map"
                )
            ).first()
        ]
        data = {"lab": lab, "dashboard": with_map[0], "story": (story.project_id, story.title)}
    try:
        yield data
    finally:
        lab.close()


def test_the_public_dashboard_prints_with_its_map_and_intervals(world, artifacts) -> None:
    _id, slug, title = world["dashboard"]
    c = api_client(world["lab"])
    r = c.get(f"/public/dashboards/{slug}/brief.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert "汇报材料" in unquote(r.headers["content-disposition"])
    text = pdf_text(r.content)
    assert title in text and "数据来源" in text and "95%区间" in text and "ε" in text
    assert "第1页" in text or page_count(r.content) >= 1
    page = first_page_png(r.content)
    assert colours(page) > 150  # charts in colour on the first page
    (artifacts / "brief-dashboard-page1.png").write_bytes(page)
    (artifacts / "brief-dashboard.pdf").write_bytes(r.content)
    again = c.get(f"/public/dashboards/{slug}/brief.pdf")
    assert again.content == r.content  # served from the brief cache, not laid out again
    english = c.get(f"/public/dashboards/{slug}/brief.pdf?lang=en")
    assert "Datasources" in pdf_text(english.content) and "95%interval" in pdf_text(english.content)


@pytest.mark.needs("tesseract")
def test_the_public_story_prints_its_chinese_title(world, artifacts) -> None:
    project_id, title = world["story"]
    r = api_client(world["lab"]).get(f"/public/projects/{project_id}/brief.pdf")
    assert r.status_code == 200
    page = first_page_png(r.content)
    (artifacts / "brief-story-page1.png").write_bytes(page)
    assert title[:6] in ocr_text(page)
    assert title in pdf_text(r.content)


def test_drafts_and_unknown_things_print_nothing_and_in_lab_briefs_need_a_login(world) -> None:
    lab = world["lab"]
    anon = api_client(lab)
    assert anon.get("/public/dashboards/no-such/brief.pdf").status_code == 404
    assert anon.get("/public/projects/999999/brief.pdf").status_code == 404
    dash_id, _slug, title = world["dashboard"]
    assert anon.get(f"/dashboards/{dash_id}/brief.pdf", follow_redirects=False).status_code in (302, 303, 401)
    leader = api_client(lab)
    browser_login(leader, "leader", "Demo@2026")
    r = leader.get(f"/dashboards/{dash_id}/brief.pdf")
    assert r.status_code == 200 and title in pdf_text(r.content)
    story_project, story_title = world["story"]
    assert story_title in pdf_text(leader.get(f"/showcase/stories/{story_project}/brief.pdf").content)
    assert leader.get(f"/dashboards/{dash_id}/brief.pdf?lang=xx").status_code == 422


def test_a_withdrawn_release_takes_the_public_brief_down(world) -> None:
    lab = world["lab"]
    with lab.read() as s:
        rows = s.execute(
            select(Dashboard.slug, DashboardWidget.source)
            .join(DashboardWidget, DashboardWidget.dashboard_id == Dashboard.id)
            .where(Dashboard.state == "published", DashboardWidget.source_kind == "release")
        ).all()
    assert rows, "the demo has a published dashboard with a released table"
    slug, source = rows[0]
    from countylab.storage.airlock_models import ReleaseFile

    with lab.read() as s:
        request_id = s.get(ReleaseFile, int(source["file_id"])).request_id
    c = api_client(lab)
    assert c.get(f"/public/dashboards/{slug}/brief.pdf").status_code == 200
    with lab.tx() as s:
        withdrawal.retract(s, SYSTEM, request_id, "测试撤展")
    assert c.get(f"/public/dashboards/{slug}/brief.pdf").status_code == 404
