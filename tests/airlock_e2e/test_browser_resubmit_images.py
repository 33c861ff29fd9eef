"""In Chromium: checkers see charts as images (never SVG source), tables with the checks' flags;
a returned request is resubmitted from the browser with a changed file list and a reply, and the
checker sees what changed.  Screenshots land in $COUNTYLAB_TEST_ARTIFACTS."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from countylab.output import Outputs
from tests.airlock_e2e.conftest import World, build_world
from tests.browser import Session, live_server
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    world = build_world(tmp_path_factory.mktemp("browser-resubmit"), grade="general_2")  # one checker
    with live_server(world.lab) as base:
        yield world, base
    world.lab.close()


def _login(session: Session, username: str) -> None:
    session.go("/login")
    session.page.fill("input[name=username]", username)
    session.page.fill("input[name=password]", PASSWORD)
    session.page.click("#login-form button[type=submit]")
    session.page.wait_for_url(session.base + "/")


def _outputs(tmp: Path) -> dict[str, bytes]:
    """A library table and its bar chart (with sidecars), a PNG and a text file."""
    import pandas as pd

    out = Outputs(tmp)
    df = pd.DataFrame({"village": ["青禾村"] * 40 + ["东岭村"] * 40 + ["南湾村"] * 40, "visits": [1.0] * 120})
    out.pivot_table("by_village.csv", df, "village", "visits", count_column="residents")
    out.bar_chart(
        "by_village.svg", "by_village.csv", label="village", value="mean_visits", title="各村服务次数"
    )
    png = io.BytesIO()
    Image.new("RGB", (240, 120), (32, 96, 160)).save(png, "PNG")
    files = {p.name: p.read_bytes() for p in tmp.iterdir() if p.is_file()}
    return files | {"map.png": png.getvalue(), "notes.txt": "方法说明：按村汇总。\n".encode()}


def _image_loaded(session: Session, selector: str) -> bool:
    return bool(session.page.locator(selector).first.evaluate("img => img.complete && img.naturalWidth > 0"))


def test_images_rendered_and_resubmission_in_the_browser(
    site: tuple[World, str], browser: Any, artifacts: Path, tmp_path: Path
) -> None:
    world, base = site
    job = world.make_job(_outputs(tmp_path))
    selectors = ["analyse/by_village.csv", "analyse/by_village.svg", "analyse/map.png", "analyse/notes.txt"]
    body = {"job_id": job, "title": "各村服务次数", "files": [{"name": s} for s in selectors], "submit": True}
    req = world.client("dev").post("/api/airlock/requests", json=body).json()
    assert req["state"] == "under_review", req
    rid = req["id"]

    checker = Session(browser, base, artifacts)
    _login(checker, "checker")
    checker.go(f"/airlock/requests/{rid}")
    svg = "section[data-file='analyse/by_village.svg'] img.airlock-image"
    assert checker.page.locator(svg).count() == 1 and _image_loaded(checker, svg)  # drawn, not source
    assert "<svg" not in checker.page.locator("section[data-file='analyse/by_village.svg']").inner_text()
    assert _image_loaded(checker, "section[data-file='analyse/map.png'] img.airlock-image")
    assert checker.page.locator("section[data-file='analyse/by_village.csv'] .preview-table th").count() >= 2
    checker.shot("airlock-10-images-rendered")
    checker.page.fill("#comment-form input[name=body]", "说明文件不需要出域，请去掉")
    checker.page.click("#comment-form button[type=submit]")
    checker.page.wait_for_url(f"{base}/airlock/requests/{rid}")
    checker.page.fill("#vote-form textarea[name=comment]", "请去掉说明文件")
    checker.page.click("#vote-form button[value=return]")
    checker.page.wait_for_url(f"{base}/airlock/requests/{rid}")
    assert checker.page.locator("#request-state").inner_text() == "已退回"

    dev = Session(browser, base, artifacts)
    _login(dev, "dev")
    dev.go(f"/airlock/requests/{rid}")
    form = dev.page.locator("#resubmit-form")
    assert form.is_visible()
    form.locator("input[name=selector][value='analyse/notes.txt']").uncheck()
    form.locator("textarea[name^='reply.']").first.fill("已去掉说明文件")
    dev.page.evaluate("window.scrollTo(0, 0)")
    dev.shot("airlock-11-resubmit-form")
    form.locator("button[type=submit]").click()
    dev.page.wait_for_url(f"{base}/airlock/requests/{rid}")
    assert dev.page.locator("#request-state").inner_text() == "审核中"
    assert "移除 1" in dev.page.locator("#round-changes").inner_text()  # counts only, for the developer
    dev.close()

    checker.go(f"/airlock/requests/{rid}")
    changes = checker.page.locator("#round-changes")
    assert "analyse/notes.txt" in changes.inner_text() and "移除" in changes.inner_text()
    assert "已去掉说明文件" in checker.page.locator("#comments").inner_text()
    assert _image_loaded(checker, svg)
    checker.shot("airlock-12-round-changes")
    checker.close()


def test_request_page_polls_until_the_checks_finish(
    site: tuple[World, str], browser: Any, artifacts: Path
) -> None:
    """A submitted request whose checks have not run yet: the page shows progress, polls the
    state route, and reloads by itself once the checks are done."""
    from countylab.identity import service as ids

    world, base = site
    job = world.make_job({"by_village.csv": "village,residents\n青禾村,40\n东岭村,40\n".encode()})
    body = {
        "job_id": job,
        "title": "等待检查",
        "files": [{"name": "analyse/by_village.csv"}],
        "submit": False,
    }
    rid = world.client("dev").post("/api/airlock/requests", json=body).json()["id"]
    with world.lab.tx() as s:  # submitted, checks not yet run (as while a worker is busy)
        dev_principal = ids.principal_for(s, ids.get_user(s, world.users["dev"]), "system")
        world.lab.airlock.submit(s, dev_principal, rid)
    dev = Session(browser, base, artifacts)
    _login(dev, "dev")
    dev.go(f"/airlock/requests/{rid}")
    assert dev.page.locator("#checks-live").is_visible()
    assert dev.page.locator("#request-state").inner_text() == "已提交"
    dev.shot("airlock-13-checks-running")
    world.lab.airlock.check_pending(world.lab.tx, rid, read=world.lab.read)
    dev.page.wait_for_function(
        "() => document.querySelector('#request-state')?.innerText === '审核中'", timeout=15000
    )
    assert dev.page.locator("#checks-live").count() == 0
    dev.close()
