"""The developer's path in a real browser (headless Chromium): open the compute center, upload
the sample project as a zip, watch the job page refresh itself until it shows 已成功, and read
the scanned log excerpt.  Screenshots land in ``$COUNTYLAB_TEST_ARTIFACTS`` (test-artifacts/)."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from countylab.bootstrap import DEMO_PASSWORD
from countylab.i18n import catalog
from countylab.lab import Lab
from tests.browser import require_browser
from tests.capabilities import CHROMIUM
from tests.jobs_e2e.e2e_helpers import EXAMPLE, center, demo_lab_from, serve

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ZH = catalog("zh-CN")

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("bwrap")]


def _sync_api() -> Any:
    return require_browser()  # skips without Chromium; fails under make test


@pytest.fixture(scope="module")
def live(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, str]]:
    lab = demo_lab_from(demo_template, tmp_path_factory.mktemp("browser"))
    center(lab).start()
    with serve(lab) as url:
        yield lab, url
    lab.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    path = Path(os.environ.get("COUNTYLAB_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _zip(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, p.name)
    return dest


def test_developer_submits_the_sample_project_and_watches_it_succeed(live, artifacts, tmp_path):
    lab, base = live
    sync_api = _sync_api()
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(base + "/login")
        page.fill("input[name=username]", "developer")
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(base + "/")

        page.click(f"#sidebar >> text={ZH['nav.compute']}")
        page.wait_for_url(base + "/jobs")
        assert ZH["jobs.quota"] in page.locator("#quota-card").inner_text()
        page.screenshot(path=str(artifacts / "jobs-01-list-empty.png"), full_page=True)

        page.set_input_files("#submit-form input[name=file]", str(_zip(EXAMPLE, tmp_path / "model.zip")))
        page.fill("#submit-form input[name=name]", "养老服务需求模型")
        page.click("#submit-form button[type=submit]")
        page.wait_for_url(base + "/jobs/*")
        assert ZH["jobs.submitted"].split("{")[0] in page.locator(".flash").inner_text()
        page.screenshot(path=str(artifacts / "jobs-02-submitted.png"), full_page=True)

        # jobs.js reloads the page when the state changes; wait for the final badge
        page.wait_for_selector("#job-state[data-state=succeeded]", timeout=120_000)
        badge = page.locator("#job-state").inner_text()
        assert "成功" in badge, badge
        assert page.locator("#exit-code").count() == 0  # exit codes and logs are outputs
        assert "countylab run" in page.locator("#job-logs").inner_text()
        assert "test MAE" not in page.content()
        assert page.locator("#job-steps li.current").inner_text() == ZH["jobs.state.succeeded"]
        assert page.locator("#cancel-button").count() == 0
        page.screenshot(path=str(artifacts / "jobs-03-succeeded.png"), full_page=True)

        page.goto(base + "/jobs")
        row = page.locator("#jobs-table tbody tr").first
        assert "养老服务需求模型" in row.inner_text() and "成功" in row.inner_text()
        page.screenshot(path=str(artifacts / "jobs-04-list.png"), full_page=True)
        page.goto(base + "/projects")
        page.click("text=养老服务需求预测")
        assert page.locator("#project-jobs-link").get_attribute("href").startswith("/jobs?project=")
        context.close()
        browser.close()
    assert problems == [], f"browser console errors (CSP violations, JS errors): {problems}"
