"""docs/tutorial/other-roles.md in real Chromium: the admin's users, e-mail notices and audit log,
the leader's catalog (search by everyday words, synthetic preview only), the operator's projects
and job queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.walkthrough.world import Demo, assert_beijing, demo_county, visible_text

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_county(tmp_path_factory.mktemp("walk-others")) as d:
        yield d


def test_admin_tour(browser: Any, demo: Demo, artifacts: Path) -> None:
    s = demo.session(browser, "admin", artifacts)
    page = s.page
    page.click("#sidebar >> text=单位与用户")
    people = visible_text(s, "main")
    assert "刘开发" in people and "县民政局" in people
    page.click("text=通知")
    page.wait_for_url(demo.url + "/notifications")
    mail = visible_text(s, "main")
    assert "邮件通知" in mail and "接收通知的邮箱" in mail and "尚未配置邮件服务器" in mail
    page.click("#sidebar >> text=审计日志")
    assert "哈希链完整" in page.locator("#chain-status").inner_text()
    assert_beijing(visible_text(s, "#audit-table"))
    s.close()


def test_leader_tour(browser: Any, demo: Demo, artifacts: Path) -> None:
    s = demo.session(browser, "leader", artifacts)
    page = s.page
    assert "领导" in visible_text(s, "main")
    page.click("main >> text=数据目录")
    page.fill(".search-form input[name=q]", "居民")
    page.click(".search-form button[type=submit]")
    page.wait_for_load_state()
    page.locator("#dataset-list a.dataset-card").first.click()
    assert page.locator("h1").first.inner_text().startswith("常住人口信息")
    assert "模拟数据" in visible_text(s, "#preview")
    page.click("#sidebar >> text=成果展示中心")  # built by issue 14: released results, stories, dashboards
    page.wait_for_load_state()
    assert "建设中" not in visible_text(s, "main")
    s.close()


def test_operator_tour(browser: Any, demo: Demo, artifacts: Path) -> None:
    s = demo.session(browser, "operator", artifacts)
    page = s.page
    page.click("#sidebar >> text=项目")
    projects = visible_text(s, "main")
    assert "养老服务需求预测" in projects and "农作物产量模型" in projects and "新建项目" in projects
    s.go("/jobs")
    assert "算力中心" in visible_text(s, "main")
    s.close()
