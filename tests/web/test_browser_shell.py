"""The web shell in a real browser: headless Chromium (Playwright) against uvicorn in a thread.

Two roles log in and see different things, the language switches both ways, an API token is
shown exactly once, and on a phone-sized screen the menu opens from the ☰ button.  Every page
is checked for JavaScript errors and Content-Security-Policy violations, and screenshots land in
``$COUNTYLAB_TEST_ARTIFACTS`` (default ``test-artifacts/``) for a human to look at.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from tests.support import build_lab

from countylab.bootstrap import DEMO_PASSWORD, setup_demo
from countylab.i18n import catalog
from countylab.web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ZH, EN = catalog("zh-CN"), catalog("en")
PROJECT_TITLE = "养老服务需求预测"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _require_browser() -> Any:
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (install chromium; never `playwright install`)"
    else:
        try:
            from playwright import sync_api
        except ImportError:
            problem = "the playwright package is not installed (pip install -e .[dev])"
    if problem:
        if os.environ.get("COUNTYLAB_TEST_REQUIRE_PG") == "1":
            pytest.fail(f"browser test required by the test script but {problem}")
        pytest.skip(problem)
    return sync_api


@pytest.fixture(scope="module")
def artifacts() -> Path:
    path = Path(os.environ.get("COUNTYLAB_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    lab = build_lab(tmp_path_factory.mktemp("browser"), county_name="青禾县")
    report = setup_demo(lab, size="tiny")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(lab, demo_logins=report.logins)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        lab.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = _require_browser()
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Session:
    """One browser context (its own cookies) that records console errors of every page."""

    def __init__(self, browser: Any, base: str, artifacts: Path, **context: Any) -> None:
        self.base = base
        self.artifacts = artifacts
        self.context = browser.new_context(locale="zh-CN", **context)
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))

    def go(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def login(self, username: str) -> None:
        self.go("/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", DEMO_PASSWORD)
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_url(self.base + "/")

    def nav_texts(self) -> list[str]:
        return [t.strip() for t in self.page.locator("#sidebar .nav-label").all_inner_texts()]

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.artifacts / f"{name}.png"), full_page=True)

    def close(self, *expected: str) -> None:
        """Fails on console errors, except those naming one of the ``expected`` fragments."""
        self.context.close()
        problems = [p for p in self.problems if not any(e in p for e in expected)]
        assert problems == [], f"browser console errors (CSP violations, JS errors): {problems}"


def test_login_page_lists_demo_accounts(browser, server, artifacts):
    s = Session(browser, server, artifacts, viewport={"width": 1280, "height": 800})
    s.go("/")
    s.page.wait_for_url(server + "/login*")
    assert s.page.locator("html").get_attribute("lang") == "zh-CN"
    rows = s.page.locator(".demo-logins tbody tr")
    assert rows.count() == 10
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
    s = Session(browser, server, artifacts, viewport={"width": 390, "height": 844}, is_mobile=True,
                has_touch=True, device_scale_factor=2)
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
