"""docs/tutorial/steward.md in real Chromium: 李安全, the security officer, works through the to-do
list (a grade to confirm after the provider's upload, a developer's budget top-up), confirms the
grade, adds a county synonym so a search finds a dataset, and reads, filters and exports the
audit log to Excel.

The provider's upload and the developer's top-up request come first, through their own API
tokens (the tutorial says they were sent by colleagues)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.browser import Session
from tests.walkthrough.world import (
    ROSTER,
    Demo,
    assert_beijing,
    demo_county,
    download,
    shoot,
    visible_text,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLE = "城乡低保对象花名册"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_county(tmp_path_factory.mktemp("walk-steward")) as d:
        provider = d.api("provider")
        made = provider.post("/api/datasets", json={"title": TITLE})
        assert made.status_code == 201, made.text
        did = made.json()["id"]
        staged = provider.post(
            f"/api/datasets/{did}/uploads", files={"file": (ROSTER.name, ROSTER.read_bytes())}
        )
        assert staged.status_code == 201, staged.text
        done = provider.post(f"/api/datasets/{did}/uploads/{staged.json()['upload_id']}/commit", json={})
        assert done.status_code in (200, 201), done.text
        yield d


def _developer_asks_for_budget(browser: Any, demo: Demo, artifacts: Path) -> None:
    """The tutorial's preparation: the developer asks for ε 0.5 more on 数据黑匣."""
    dev = demo.session(browser, "developer", artifacts)
    dev.page.click("#sidebar >> text=数据黑匣")
    form = dev.page.locator("#topup-form")
    form.locator("select[name=dataset_id]").select_option(label="residents")
    form.locator("input[name=epsilon]").fill("0.5")
    form.locator("input[name=reason]").fill("按乡镇统计独居高龄老人，需追加预算")
    form.locator("button[type=submit]").click()
    dev.page.wait_for_load_state()
    row = dev.page.locator("#topup-table tbody tr").first.inner_text()
    assert "按乡镇统计独居高龄老人" in row and "待审批" in row, row
    dev.close()


def _search(s: Session, words: str) -> list[str]:
    s.page.fill(".search-form input[name=q]", words)
    s.page.click(".search-form button[type=submit]")
    s.page.wait_for_load_state()
    return [t.strip() for t in s.page.locator("#dataset-list .dataset-card h2").all_inner_texts()]


def test_steward_tutorial(browser: Any, demo: Demo, artifacts: Path) -> None:
    started = datetime.now(UTC)
    _developer_asks_for_budget(browser, demo, artifacts)
    s = demo.session(browser, "steward", artifacts)
    page = s.page
    # 1. the to-do list: the new dataset's grade and the developer's top-up wait here
    grade_todo = page.locator('#todo li[data-kind="todo.confirm_grade"]')
    assert grade_todo.count() == 1
    assert f"确认数据集「{TITLE}」的分级（建议：" in grade_todo.inner_text()
    assert "一般数据" in grade_todo.inner_text()  # the grade by name, not general_3
    topup_todo = page.locator('#todo li[data-kind="todo.decide_topup"]')
    assert "处理项目「养老服务需求预测」的隐私预算追加申请（ε 0.5）" in topup_todo.inner_text()
    assert int(page.locator(".bell").get_attribute("data-unread") or "0") >= 2
    shoot(s, "steward-home-todo")

    # 2. confirm the grade on the dataset page; the to-do goes
    grade_todo.locator("a").first.click()
    page.wait_for_selector("#grade-form")
    assert page.locator("h1 .badge.pending").count() == 1  # 待确认
    page.fill("#grade-form input[name=reason]", "含公民身份号码和家庭住址，按一般数据3级管理")
    page.select_option("#grade-form select[name=grade]", label="一般数据3级")
    page.click("#grade-form button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#grade-badge").inner_text() == "一般数据3级"
    assert page.locator("h1 .badge.pending").count() == 0
    page.click("text=首页")
    assert page.locator('#todo li[data-kind="todo.confirm_grade"]').count() == 0

    # 3. the top-up: approve it on the 隐私计算 page
    topup_todo.locator("a").first.click()
    row = page.locator("#topup-table tbody tr").first
    assert "按乡镇统计独居高龄老人" in row.inner_text() and "刘开发" in row.inner_text()  # by name
    row.locator("button[value=approve]").click()
    page.wait_for_load_state()
    assert "已批准" in page.locator("#topup-table tbody tr").first.inner_text()
    page.click("text=首页")
    assert page.locator('#todo li[data-kind="todo.decide_topup"]').count() == 0

    # 4. a county word nobody else uses: 一老一小 finds nothing until it is a synonym of 老年人
    s.go("/datasets")
    assert _search(s, "一老一小") == []
    page.click("#synonyms-link")
    page.fill("#synonym-form input[name=words]", "一老一小，老年人")
    page.fill("#synonym-form input[name=note]", "县民政局项目简称")
    page.click("#synonym-form button[type=submit]")
    page.wait_for_load_state()
    assert "已添加同义词组" in visible_text(s, "main")
    s.go("/datasets")
    assert _search(s, "一老一小")[0] == "居家养老服务记录"
    shoot(s, "steward-synonym-search")

    # 5. the audit log: filter by person, action and date, read names and Beijing times
    page.click("#sidebar >> text=审计日志")
    page.wait_for_selector("#audit-table")
    assert "哈希链完整" in page.locator("#chain-status").inner_text()
    page.select_option("#audit-filters select[name=user]", label="李安全（数据安全官） (steward)")
    page.select_option("#audit-filters select[name=action]", label="下调分级")
    today = (started + timedelta(hours=8)).date().isoformat()
    page.fill("#audit-filters input[name=since]", today)
    page.fill("#audit-filters input[name=until]", today)
    page.click("#audit-filters button[type=submit]")
    page.wait_for_load_state()
    rows = page.locator("#audit-table tbody tr")
    shown = rows.all_inner_texts()
    assert shown and all("下调分级" in r and "李安全" in r for r in shown), shown  # only what was asked
    text = rows.first.inner_text()  # newest first
    assert "下调分级" in text and "李安全" in text and TITLE in text
    assert "原值：一般数据4级" in text and "新值：一般数据3级" in text
    assert_beijing(visible_text(s, "main"), started)
    shoot(s, "steward-audit-filtered")

    # 6. export what is shown to Excel: names and Beijing times, opens with openpyxl
    xlsx = download(s, "#export-xlsx")
    assert xlsx.suffix == ".xlsx"
    rows_xlsx = list(load_workbook(xlsx).active.iter_rows(values_only=True))
    head = list(rows_xlsx[1])
    when, who, what = head.index("时间（北京时间）"), head.index("操作者"), head.index("操作")
    events = [r for r in rows_xlsx[2:] if isinstance(r[0], int)]  # below them: a note on the filters
    mine = [r for r in events if r[what] == "下调分级" and "李安全" in str(r[who])]
    assert mine and len(mine) == len(events)
    newest = max(str(r[when]) for r in mine)
    assert newest[:16] in visible_text(s, "#audit-table")  # the same Beijing time as on the page
    csv = download(s, "#export-csv")
    raw = csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and "下调分级" in raw.decode("utf-8-sig")
    s.close()
