"""Browser-test support: a live uvicorn server over a lab, headless Chromium, a recording session.

Real Chromium (``/usr/bin/chromium``, driven by Playwright; never ``playwright install``) against
uvicorn on 127.0.0.1 in a thread.  The ``browser`` and ``artifacts`` fixtures are registered
for every test by ``tests/conftest.py``; a test module imports ``live_server`` and ``Session``
and defines its own ``server`` fixture with ``live_server(lab, ...)``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from countylab.bootstrap import DEMO_PASSWORD
from countylab.web.app import create_app
from tests.capabilities import CHROMIUM, need

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_browser() -> Any:
    """Playwright's sync API; skips without Chromium, fails under ``make test`` (tests.capabilities)."""
    need("browser")
    from playwright import sync_api

    return sync_api


@pytest.fixture(scope="module")
def artifacts() -> Path:
    path = Path(os.environ.get("COUNTYLAB_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def live_server(lab: Any, **app_kwargs: Any) -> Iterator[str]:
    """Serve ``create_app(lab)`` on a free 127.0.0.1 port for the duration of the block."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(lab, **app_kwargs)
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = require_browser()
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

    def login(self, username: str, password: str = DEMO_PASSWORD) -> None:
        self.go("/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
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
