"""Search as county staff use it, in Chromium: a developer types the issue's three words into the
catalog's search box and sees the right dataset first with why it matched; a security officer adds
the county's own synonym on the synonyms page, and the next search finds through it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from countylab.bootstrap import setup_demo
from tests.browser import Session, live_server
from tests.support import build_lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    lab = build_lab(tmp_path_factory.mktemp("search-browser"), county_name="青禾县")
    report = setup_demo(lab, size="tiny", steps=False)
    try:
        with live_server(lab, demo_logins=report.logins) as url:
            yield {"url": url, "lab": lab}
    finally:
        lab.close()


def _search(s: Session, words: str) -> list[str]:
    s.page.fill(".search-form input[name=q]", words)
    s.page.click(".search-form button[type=submit]")
    s.page.wait_for_load_state()
    return [t.strip() for t in s.page.locator("#dataset-list .dataset-card h2").all_inner_texts()]


def test_developer_finds_what_they_mean(browser, demo, artifacts) -> None:
    s = Session(browser, demo["url"], artifacts, viewport={"width": 1280, "height": 900})
    s.login("developer")
    s.go("/datasets")
    titles = _search(s, "身份证")
    assert titles[0] == "常住人口信息"
    why = s.page.locator("#dataset-list .dataset-card").first.locator(".search-why")
    assert why.locator("mark").first.inner_text() == "公民身份号码"
    assert "列：公民身份号码（id_number）" in why.inner_text() and "“身份证”的同义词" in why.inner_text()
    s.shot("search-01-id-card")
    assert _search(s, "老人")[0] == "居家养老服务记录"
    assert _search(s, "居民")[0] == "常住人口信息"
    s.shot("search-02-residents")
    assert _search(s, "常驻人口")[0] == "常住人口信息"  # a typo still finds it
    assert "按“常驻人口”的近似写法" in s.page.locator(".search-why").first.inner_text()
    assert s.page.locator("#synonyms-link").count() == 1
    s.close()


def test_steward_adds_a_county_word_and_search_uses_it(browser, demo, artifacts) -> None:
    s = Session(browser, demo["url"], artifacts, viewport={"width": 1280, "height": 900})
    s.login("steward")
    s.go("/datasets")
    assert _search(s, "一老一小") == []
    s.page.click("#synonyms-link")
    s.page.fill("#synonym-form input[name=words]", "一老一小，老年人")
    s.page.fill("#synonym-form input[name=note]", "县民政局项目简称")
    s.page.click("#synonym-form button[type=submit]")
    s.page.wait_for_load_state()
    assert "已添加同义词组" in s.page.content()
    assert "一老一小，老年人" in s.page.locator("#synonyms-table input[name=words]").first.input_value()
    s.shot("search-03-synonyms-page")
    s.go("/datasets")
    assert _search(s, "一老一小")[0] == "居家养老服务记录"
    s.shot("search-04-county-word")
    s.close()
