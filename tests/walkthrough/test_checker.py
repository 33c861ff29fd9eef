"""docs/tutorial/checker.md in real Chromium: 陈审核, an output checker, finds a release request in
the to-do list and the header badge, sees the charts drawn (never SVG source) and the tables with
the checks' flags, returns the request with a comment, and approves the resubmission; the second
checker 周复核 approves too and the developer's result is released.

The developer's part (one real sandboxed run of the sample model, the request, the resubmission)
goes through the developer's API token, as the developer tutorial does it in the browser."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from countylab_client._jobs import pack_folder
from tests.capabilities import need
from tests.jobs_e2e.e2e_helpers import wait_state
from tests.walkthrough.world import Demo, assert_beijing, demo_county, shoot, visible_text

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.needs("sandbox")]

TITLE = "各镇高龄老人收入"
SVG = "section[data-file='analyse/by_town.svg'] img.airlock-image"
#: the developer's small analysis: residents aged 90+ by town (small groups the checks flag) and a
#: bar chart drawn from the same table, with the lab's output library as the how-to shows
ANALYSIS = """
import glob, os
import pandas as pd
from countylab.output import Outputs

df = pd.concat(pd.read_parquet(p) for p in glob.glob("/data/residents/*.parquet"))
old = df[df["age"] >= 60]
out = Outputs(os.environ["COUNTYLAB_OUTBOX"])
out.pivot_table(
    "by_town.csv", old, "town_code", "income", aggfunc=["mean", "sum"], count_column="residents"
)
out.pivot_table("oldest_by_town.csv", df[df["age"] >= 90], "town_code", "income", count_column="residents")
out.bar_chart("by_town.svg", "by_town.csv", label="town_code", value="mean_income", title="各镇老人平均收入")
"""
SPEC = """version: 1
actions:
  analyse:
    run: python main.py
    datasets: [residents]
    outputs:
      - {path: by_town.csv, kind: table}
      - {path: by_town.svg, kind: figure}
      - {path: oldest_by_town.csv, kind: table}
    resources: {cpu: 1, memory_mb: 512, time_s: 60}
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Demo, int]]:
    need("sandbox")
    with demo_county(tmp_path_factory.mktemp("walk-checker"), jobs=True) as d:
        code = d.root / "analysis"
        code.mkdir()
        (code / "main.py").write_text(ANALYSIS)
        (code / "countylab.yaml").write_text(SPEC)
        dev = d.api("developer")
        sent = dev.post(
            f"/api/projects/{d.project_id()}/jobs", files={"file": ("code.tar.gz", pack_folder(code))}
        )
        assert sent.status_code == 201, sent.text
        job = sent.json()["id"]
        assert wait_state(d.lab, job, {"succeeded", "failed", "killed"}, 180) == "succeeded"
        body = {
            "job_id": job,
            "title": TITLE,
            "note": "各镇90岁以上老人的人数和平均收入",
            "files": [
                {"name": "analyse/by_town.csv", "description": "按镇汇总表", "count_columns": ["residents"]},
                {"name": "analyse/by_town.svg", "description": "按镇汇总图"},
            ],
            "submit": True,
        }
        small = {
            "job_id": job,
            "title": "各镇90岁以上老人收入",
            "files": [{"name": "analyse/oldest_by_town.csv", "count_columns": ["residents"]}],
            "submit": True,
        }
        assert dev.post("/api/airlock/requests", json=small).status_code == 201
        req = dev.post("/api/airlock/requests", json=body)
        assert req.status_code == 201, req.text
        rid = int(req.json()["id"])
        _wait_review(dev, rid)
        yield d, rid


def _wait_review(client: Any, rid: int) -> None:
    """The automatic checks run after submission; the checkers hear of it once they are done."""
    deadline = time.monotonic() + 60
    while (state := client.get(f"/api/airlock/requests/{rid}/state").json()["state"]) == "submitted":
        assert time.monotonic() < deadline, "checks did not finish"
        time.sleep(0.2)
    assert state == "under_review", client.get(f"/api/airlock/requests/{rid}").json()


def _image_drawn(page: Any, selector: str) -> bool:
    return bool(page.locator(selector).first.evaluate("img => img.complete && img.naturalWidth > 0"))


def test_checker_tutorial(browser: Any, demo: tuple[Demo, int], artifacts: Path) -> None:
    d, rid = demo
    s = d.session(browser, "checker", artifacts)
    page = s.page
    # 1. the header badge and the to-do list name the request and its project
    assert page.locator(".bell").get_attribute("data-unread") == "1"
    item = page.locator('#todo li[data-kind="todo.review_release"]')
    assert f"审核出域申请「{TITLE}」（项目：养老服务需求预测）" in item.inner_text()
    shoot(s, "checker-home-todo")

    # 2. the request: charts drawn as images, tables with flags, times in Beijing time
    item.locator("a").first.click()
    page.wait_for_selector("#request-state")
    page.wait_for_function(
        "() => document.querySelector('#request-state').textContent.trim() === '审核中'", timeout=60_000
    )
    page.wait_for_selector(SVG)
    assert _image_drawn(page, SVG)
    assert "<svg" not in page.locator("section[data-file='analyse/by_town.svg']").inner_text()
    table = page.locator("section[data-file='analyse/by_town.csv'] .preview-table")
    assert table.locator("th").count() >= 2
    assert page.locator(".flagged-cell").count() == 0  # no cell under the threshold here
    assert_beijing(visible_text(s, "main"))
    page.locator("section[data-file='analyse/by_town.svg']").scroll_into_view_if_needed()
    shoot(s, "checker-request-chart")

    # the other request was returned by the automatic checks: each failing cell is named
    s.go(f"/airlock/requests/{rid - 1}")
    page.wait_for_selector("#request-state")
    assert page.locator("#request-state").inner_text().strip() == "已退回"
    reasons = visible_text(s, "main")
    assert "自动检查未通过" in reasons and "未通过 统计披露控制" in reasons
    assert re.search(r"第 \d+ 行“residents”列的计数小于 10", reasons), reasons  # cell by cell, in words
    page.locator("text=统计披露控制").last.scroll_into_view_if_needed()
    shoot(s, "checker-flagged-cells")
    page.goto(f"{d.url}/airlock/requests/{rid}")

    # 3. return it with a comment
    page.fill("#vote-form textarea[name=comment]", "特征重要性图缺少说明，请补充训练样本量后重新提交")
    page.click("#vote-form button[value=return]")
    page.wait_for_url(f"{d.url}/airlock/requests/{rid}")
    assert page.locator("#request-state").inner_text().strip() == "已退回"
    page.click("text=首页")
    assert page.locator('#todo li[data-kind="todo.review_release"]').count() == 0

    # the developer resubmits (their tutorial's step 7), with a reply
    again = d.api("developer").post(
        f"/api/airlock/requests/{rid}/resubmit",
        json={
            "files": [
                {
                    "name": "analyse/by_town.csv",
                    "description": "人数少于10的镇已合并",
                    "count_columns": ["residents"],
                },
                {"name": "analyse/by_town.svg", "description": "按镇汇总图"},
            ]
        },
    )
    assert again.status_code == 200, again.text

    # 4. the resubmission is back in the to-do list; approve it
    s.go("/")
    item = page.locator('#todo li[data-kind="todo.review_release"]')
    assert TITLE in item.inner_text()
    item.locator("a").first.click()
    page.wait_for_function(
        "() => document.querySelector('#request-state').textContent.trim() === '审核中'", timeout=60_000
    )
    page.fill("#vote-form textarea[name=comment]", "已补充说明，同意出域")
    page.click("#vote-form button[value=approve]")
    page.wait_for_url(f"{d.url}/airlock/requests/{rid}")
    votes = visible_text(s, "#votes")
    assert "陈审核" in votes and "同意" in votes
    s.close()

    # 5. the second checker approves in the browser too; the request is released
    s2 = d.session(browser, "checker2", artifacts)
    s2.page.click('#todo li[data-kind="todo.review_release"] a')
    s2.page.fill("#vote-form textarea[name=comment]", "同意")
    s2.page.click("#vote-form button[value=approve]")
    s2.page.wait_for_url(f"{d.url}/airlock/requests/{rid}")
    assert s2.page.locator("#request-state").inner_text().strip() == "已出域"
    shoot(s2, "checker-released")
    s2.close()
