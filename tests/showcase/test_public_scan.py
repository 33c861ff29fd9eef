"""The privacy scan: every public page of a demo lab with all demo steps, HTML and JSON, holds no
identifier, no person's name and no exact raw value of a non-open demo dataset.

The routes are enumerated from the app (every GET under /public without a path parameter), and
links are followed, so pages other parts add (scenarios, notices, the map, dashboards) are
scanned too.  A second test proves the scan can fail: a resident's name put into a published
story is found.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from countylab.lab import Lab
from countylab.showcase import cache, public_scan, stories
from countylab.showcase.open_data import is_open
from countylab.storage.models import Dataset, Project
from countylab.web.app import create_app, iter_api_routes
from tests.showcase.portal_fixtures import demo_lab
from tests.showcase.portal_fixtures import principal as _principal


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = demo_lab(tmp_path_factory.mktemp("scan"))
    yield lab
    lab.close()


def _forbidden(lab: Lab) -> dict[str, tuple[str, str]]:
    with lab.read() as s:
        opened = [d.name for d in s.execute(select(Dataset)).scalars() if is_open(d)]
    assert set(opened) >= {"towns", "villages", "air_quality", "traffic_counts"}
    return public_scan.forbidden_values(lab.settings.seed_dir, opened)


def _pages(lab: Lab) -> dict[str, str]:
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
    assert "/public" in starts and "/public/api/overview" in starts

    def get(url: str) -> tuple[int, str]:
        resp = client.get(url, follow_redirects=False)
        assert resp.status_code < 500, (url, resp.text[:300])
        return resp.status_code, resp.text

    return public_scan.crawl(get, starts)


def test_forbidden_values_cover_names_identifiers_and_raw_values(lab: Lab) -> None:
    forbidden = _forbidden(lab)
    kinds = {k for k, _src in forbidden.values()}
    assert {"identifier", "name", "text", "number"} <= kinds
    sources = {src for _k, src in forbidden.values()}
    for expected in ("residents.name", "residents.id_number", "residents.mobile", "enterprises.uscc"):
        assert expected in sources
    assert any(src.endswith(".address") for src in sources)  # households' and residents' addresses
    assert not any(src.startswith(("towns.", "villages.", "air_quality.")) for src in sources)


def test_no_public_page_holds_personal_or_raw_data(lab: Lab) -> None:
    forbidden = _forbidden(lab)
    pages = _pages(lab)
    for must in (
        "/public",
        "/public/projects",
        "/public/gallery",
        "/public/open-data",
        "/public/api/open-data",
    ):
        assert must in pages
    assert any(re.fullmatch(r"/public/projects/\d+", u) for u in pages)
    assert any(re.fullmatch(r"/public/gallery/\d+", u) for u in pages)
    findings = public_scan.scan(pages, forbidden)
    print(f"scanned {len(pages)} public pages for {len(forbidden)} forbidden values")
    assert findings == [], "\n".join(f"{f.url}: {f.kind} {f.value!r} ({f.source})" for f in findings[:20])


def test_the_scan_finds_a_residents_name_put_on_a_page(lab: Lab) -> None:
    forbidden = _forbidden(lab)
    name = next(
        v for v, (k, src) in forbidden.items() if k == "name" and src == "residents.name" and len(v) >= 3
    )
    operator = _principal(lab, "operator")
    with lab.read() as s:
        pid = s.execute(select(Project.id).where(Project.slug == "crop-yield")).scalar_one()
        story = stories.get_story(s, pid)
        assert story is not None
        summary = story.summary
    with lab.tx() as s:
        stories.save_story(s, operator, pid, title=story.title, summary=f"{summary} 感谢{name}的配合。")
    try:
        findings = public_scan.scan(_pages(lab), forbidden)
        assert any(f.value == name and f.source == "residents.name" for f in findings)
        assert {f.url for f in findings if f.value == name} >= {
            f"/public/projects/{pid}",
            "/public/api/projects",
        }
    finally:
        with lab.tx() as s:
            stories.save_story(s, operator, pid, title=story.title, summary=summary)
        cache.clear()


def test_generic_patterns_are_caught_whatever_the_seed() -> None:
    page = "联系 13712345678；证件 11010519491231002X"
    found = {f.source for f in public_scan.find(page, {}, "/x")}
    assert found == {"mobile", "id_number"}
    assert public_scan.find("编号 110105194912310021", {}, "/x") == []  # a wrong check digit is no ID
