"""What every role walkthrough shares: the tiny demo county served once per module, a Chinese
browser session per demo user, and the checks a user makes with their own eyes.

The walkthroughs run the numbered steps of ``docs/tutorial/<role>.md`` in real Chromium against
the same world a reader gets from ``make demo`` (``setup_demo(size="tiny")``, 青禾县, the demo
users and password), so a tutorial step that stops working fails here.  Only what the tutorial
leaves to *another* person (the checker's vote in the developer's walkthrough, the developer's
request in the checker's) is done through that person's API, never by writing rows directly.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from countylab.bootstrap import DemoReport, setup_demo
from countylab.lab import Lab
from countylab.storage.models import Project, User
from tests.browser import Session, live_server
from tests.support import api_client, build_lab

REPO = Path(__file__).resolve().parents[2]
TUTORIALS = REPO / "docs" / "tutorial"
#: the sample 花名册 the provider tutorial uploads (shipped next to the tutorial)
ROSTER = TUTORIALS / "files" / "chengguan-dibao-roster.xlsx"
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d|\+00:00")


@dataclass
class Demo:
    """The served demo county: its lab, URL and the demo logins."""

    lab: Lab
    url: str
    report: DemoReport
    root: Path

    def user_id(self, username: str) -> int:
        with self.lab.read() as s:
            return int(s.execute(select(User.id).where(User.username == username)).scalar_one())

    def project_id(self, slug: str = "elderly-care-demand") -> int:
        with self.lab.read() as s:
            return int(s.execute(select(Project.id).where(Project.slug == slug)).scalar_one())

    def api(self, username: str) -> TestClient:
        """Another demo user acting through the HTTP API with their own token (as the SDK does)."""
        return api_client(self.lab, self.user_id(username))

    def session(self, browser: Any, username: str, artifacts: Path) -> Session:
        """A Chinese Chromium session logged in as ``username`` (1280×800, downloads accepted)."""
        s = Session(
            browser,
            self.url,
            artifacts,
            viewport={"width": 1280, "height": 800},
            accept_downloads=True,
            timezone_id="Asia/Shanghai",
        )
        s.login(username)
        return s


@contextmanager
def demo_county(root: Path, *, jobs: bool = False) -> Iterator[Demo]:
    """``make demo``'s world (tiny size) served on a free port; ``jobs`` starts the dispatcher."""
    lab = build_lab(root, county_name="青禾县")
    report = setup_demo(lab, size="tiny")
    if jobs:
        lab.jobs.start()
    try:
        with live_server(lab, demo_logins=report.logins) as url:
            yield Demo(lab, url, report, root)
    finally:
        lab.close()


def visible_text(s: Session, selector: str = "main") -> str:
    return str(s.page.locator(selector).first.inner_text())


def assert_beijing(text: str, utc_moment: datetime | None = None) -> None:
    """No UTC/ISO text, and (when given) ``utc_moment`` appears as Beijing wall-clock minutes."""
    assert not ISO_UTC.search(text), f"UTC/ISO time shown: {ISO_UTC.search(text)}"
    if utc_moment is not None:
        shown = (utc_moment.astimezone(UTC) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")
        earlier = (utc_moment.astimezone(UTC) + timedelta(hours=8, minutes=-1)).strftime("%Y-%m-%d %H:%M")
        assert shown in text or earlier in text, f"Beijing time {shown} not shown in {text[:300]!r}"


def shoot(s: Session, name: str, selector: str | None = None) -> Path:
    """A screenshot of the viewport (or of one element) under the artifacts folder."""
    path = s.artifacts / f"walkthrough-{name}.png"
    if selector:
        s.page.locator(selector).first.screenshot(path=str(path))
    else:
        s.page.screenshot(path=str(path))
    return path


def cli(
    home: Path, url: str, *args: str, stdin: str = "", timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """``countylab …`` as a user types it in a terminal: a real process, Chinese locale, own HOME."""
    # XDG_* too: the test process's own state folders (tests/parallel.py) must not outrank this HOME
    dropped = ("COUNTYLAB_", "LC_", "LANG", "LANGUAGE", "XDG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(HOME=str(home), COUNTYLAB_URL=url, LANG="zh_CN.UTF-8", COUNTYLAB_LANG="zh-CN")
    exe = Path(sys.executable).with_name("countylab")
    return subprocess.run(
        [str(exe), *args], input=stdin, capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO
    )


def download(s: Session, selector: str) -> Path:
    """Click a download link and keep the file under its suggested name (as the browser saves it)."""
    with s.page.expect_download() as info:
        s.page.click(selector)
    dl = info.value
    path = s.artifacts / "walkthrough-downloads" / dl.suggested_filename
    path.parent.mkdir(parents=True, exist_ok=True)
    dl.save_as(path)
    return path
