"""In real Chromium: a developer submits a release request; the checker's header shows one
unread notification and the home page's to-do panel lists the request with its age; opening
it from the notifications page marks it read and the badge goes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.airlock_e2e.conftest import SAFE_TABLE, World, build_world, request_body
from tests.browser import Session, live_server
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    w = build_world(tmp_path_factory.mktemp("notify-browser"))
    try:
        with live_server(w.lab) as url:
            yield w, url
    finally:
        w.lab.close()


def test_checker_sees_badge_and_todo_after_a_developer_submits(
    browser: Any, setup: tuple[World, str], artifacts: Any
) -> None:
    w, url = setup
    s = Session(browser, url, artifacts, viewport={"width": 1280, "height": 860})
    s.login("checker", PASSWORD)
    page = s.page
    assert page.locator(".bell").get_attribute("data-unread") == "0"
    assert page.locator("#todo").inner_text().count("暂无待办事项") == 1

    # the developer submits a request (as the SDK or the airlock page would)
    job = w.make_job({"by_village.csv": SAFE_TABLE})
    resp = w.client("dev").post(
        "/api/airlock/requests", json={**request_body(job, "by_village.csv"), "title": "各村老年人数"}
    )
    assert resp.status_code == 201 and resp.json()["state"] == "under_review", resp.text
    rid = resp.json()["id"]

    s.go("/")
    bell = page.locator(".bell")
    assert bell.get_attribute("data-unread") == "1"
    assert bell.locator(".badge.unread").inner_text() == "1"
    item = page.locator(f'#todo li[data-kind="todo.review_release"] a[href="/airlock/requests/{rid}"]')
    assert item.inner_text() == "审核出域申请「各村老年人数」（项目：养老需求）"
    assert "刚刚" in page.locator('#todo li[data-kind="todo.review_release"]').inner_text()
    s.shot("notify-checker-home-todo")

    # the notifications page: one unread line; 查看 opens the request and marks it read
    bell.click()
    page.wait_for_url(url + "/notifications")
    row = page.locator("table.notifications tr.unread")
    assert row.count() == 1 and "出域申请「各村老年人数」待审核" in row.inner_text()
    s.shot("notify-checker-notifications")
    row.locator("button.primary").click()
    page.wait_for_url(url + f"/airlock/requests/{rid}")
    assert page.locator(".bell").get_attribute("data-unread") == "0"
    assert page.locator(".bell .badge").count() == 0

    # voting removes the to-do; the developer is told nothing until the request is decided
    s.go("/")
    assert page.locator(f'#todo a[href="/airlock/requests/{rid}"]').count() == 1
    assert (
        w.client("checker").post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"}).status_code
        == 200
    )
    s.go("/")
    assert page.locator(f'#todo a[href="/airlock/requests/{rid}"]').count() == 0
    s.close()

    # in English, the developer sees the release once the second checker approves
    assert (
        w.client("checker2")
        .post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
        .status_code
        == 200
    )
    d = Session(browser, url, artifacts, viewport={"width": 1280, "height": 860})
    d.login("dev", PASSWORD)
    d.go("/lang/en?next=/")
    assert d.page.locator(".bell").get_attribute("data-unread") == "1"
    released = d.page.locator('#todo li[data-kind="todo.release_released"]')
    assert "Release request “各村老年人数” was released: download it" in released.inner_text()
    d.shot("notify-developer-home-todo-en")
    d.close()
