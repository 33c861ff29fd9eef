"""The web shell in a real browser: headless Chromium (Playwright) against uvicorn in a thread.

Two roles log in and see different things, the language switches both ways, an API token is
shown exactly once, and on a phone-sized screen the menu opens from the ☰ button.  Every page
is checked for JavaScript errors and Content-Security-Policy violations, and screenshots land in
``$COUNTYLAB_TEST_ARTIFACTS`` (default ``test-artifacts/``) for a human to look at.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from countylab.bootstrap import DEMO_USERS, setup_demo
from countylab.i18n import catalog
from tests.browser import Session, live_server
from tests.support import build_lab

ZH, EN = catalog("zh-CN"), catalog("en")
PROJECT_TITLE = "养老服务需求预测"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    lab = build_lab(tmp_path_factory.mktemp("browser"), county_name="青禾县")
    report = setup_demo(lab, size="tiny")
    try:
        with live_server(lab, demo_logins=report.logins) as url:
            yield url
    finally:
        lab.close()


def test_login_page_lists_demo_accounts(browser, server, artifacts):
    s = Session(browser, server, artifacts, viewport={"width": 1280, "height": 800})
    s.go("/")
    s.page.wait_for_url(server + "/login*")
    assert s.page.locator("html").get_attribute("lang") == "zh-CN"
    rows = s.page.locator(".demo-logins tbody tr")
    assert rows.count() == len(DEMO_USERS)
    assert "developer" in s.page.locator(".demo-logins").inner_text()
    s.shot("01-login-zh")
    s.close()


def test_admin_sees_users_and_audit_and_switches_language(browser, server, artifacts):
    s = Session(browser, server, artifacts, viewport={"width": 1280, "height": 800})
    s.login("admin")
    nav = s.nav_texts()
    assert ZH["nav.orgs"] in nav and ZH["nav.audit"] in nav, nav
    assert "单位与用户" in nav and "审计日志" in nav
    s.shot("02-admin-home-zh")

    s.page.click(f"#sidebar >> text={ZH['nav.orgs']}")
    s.page.wait_for_url(server + "/orgs")
    users = s.page.locator("#users-table tbody tr")
    assert users.count() >= 10
    assert "developer" in s.page.locator("#users-table").inner_text()
    s.shot("03-admin-orgs-zh")

    s.go("/audit")
    assert "ok" in (s.page.locator("#chain-status").get_attribute("class") or "")
    assert s.page.locator("#audit-table tbody tr").count() > 0
    s.shot("04-admin-audit-zh")

    s.page.click("header a.lang")  # → English, and stay on the same page
    s.page.wait_for_url(server + "/audit")
    assert s.page.locator("html").get_attribute("lang") == "en"
    nav = s.nav_texts()
    assert EN["nav.orgs"] in nav and EN["nav.audit"] in nav and ZH["nav.orgs"] not in nav
    assert s.page.locator("h1").inner_text().strip() == EN["nav.audit"]
    s.go("/")
    s.shot("05-admin-home-en")
    s.page.click("header a.lang")  # and back to Chinese
    s.page.wait_for_url(server + "/")
    assert s.page.locator("html").get_attribute("lang") == "zh-CN"
    assert ZH["nav.orgs"] in s.nav_texts()

    s.page.click("header form button[type=submit]")  # log out
    s.page.wait_for_url(server + "/login*")
    s.close()


def test_developer_sees_own_project_not_admin_pages_and_gets_a_token_once(browser, server, artifacts):
    s = Session(browser, server, artifacts, viewport={"width": 1280, "height": 800})
    s.login("developer")
    nav = s.nav_texts()
    assert ZH["nav.orgs"] not in nav and ZH["nav.audit"] not in nav, nav
    assert ZH["nav.projects"] in nav
    assert PROJECT_TITLE in s.page.locator("main").inner_text()
    s.shot("06-developer-home-zh")

    s.go("/projects")
    assert PROJECT_TITLE in s.page.locator("main").inner_text()
    assert "农作物产量模型" not in s.page.locator("main").inner_text()  # another developer's project

    response = s.go("/audit")
    assert response.status == 403
    assert s.page.locator(".error-card h1").inner_text().strip() == "403"
    s.shot("07-developer-audit-403")

    s.go("/me")
    s.page.fill("form[action='/me/tokens'] input[name=name]", "notebook")
    s.page.click("form[action='/me/tokens'] button[type=submit]")
    s.page.wait_for_url(server + "/me")
    token = s.page.locator("#new-token code.token").inner_text().strip()
    assert token.startswith("clk_")
    assert "notebook" in s.page.locator("#tokens-table").inner_text()
    s.shot("08-developer-new-token")
    me = httpx.get(server + "/api/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 200 and me.json()["username"] == "developer"
    s.page.reload()
    assert s.page.locator("#new-token").count() == 0, "a token must be shown only once"
    assert token not in s.page.content()
    s.close("status of 403")  # the refused /audit page load


def test_phone_viewport_menu_toggles(browser, server, artifacts):
    s = Session(
        browser,
        server,
        artifacts,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    s.login("developer")
    toggle = s.page.locator("button.nav-toggle")
    assert toggle.is_visible()
    # arrow functions, not bare expressions: the page's CSP forbids eval of strings
    off_screen = "() => document.getElementById('sidebar').getBoundingClientRect().right <= 1"
    on_screen = "() => document.getElementById('sidebar').getBoundingClientRect().left >= 0"
    s.page.wait_for_function(off_screen)
    page_width = s.page.evaluate("() => document.documentElement.scrollWidth")
    assert page_width <= 390 + 1, f"the page scrolls sideways on a phone ({page_width}px wide)"
    s.shot("09-phone-menu-closed")
    toggle.click()
    s.page.wait_for_function(on_screen)
    s.page.wait_for_timeout(300)  # let the slide-in transition finish before the screenshot
    assert s.page.locator("#sidebar").get_attribute("class") == "sidebar open"
    s.shot("10-phone-menu-open")
    toggle.click()
    s.page.wait_for_function(off_screen)
    s.close()
