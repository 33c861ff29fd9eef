"""docs/tutorial/provider.md in real Chromium: 张民政 of 县民政局 registers a dataset by its Chinese
name, uploads the sample 花名册 as the clerk has it (title, 填报单位, 合计, 制表人 rows), confirms the
detected header, sees who uses the department's datasets, and finds a failed database connector
in the to-do list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from countylab.catalog import service as catalog
from tests.walkthrough.world import ROSTER, Demo, assert_beijing, demo_county, download, shoot, visible_text

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLE = "城乡低保对象花名册"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_county(tmp_path_factory.mktemp("walk-provider")) as d:
        yield d


def test_provider_tutorial(browser: Any, demo: Demo, artifacts: Path) -> None:
    s = demo.session(browser, "provider", artifacts)
    page = s.page
    # 1. the home page greets the clerk by name; the one thing waiting is the demo's overdue
    #    data-use application that needs 民政局's consent (部门同意)
    assert "张民政" in visible_text(s, "main") and "数据提供方" in visible_text(s, "main")
    todo = page.locator("#todo").inner_text()
    assert "部门同意" in todo and "已超期" in todo and "暂无待办事项" not in todo

    # 2. 数据目录 → 登记数据集: only the Chinese name, the identifier is generated
    page.click("text=数据目录")
    page.click("text=登记数据集")
    page.fill("input[name=title]", TITLE)
    page.click("main form button[type=submit]")
    page.wait_for_selector("#name-generated")
    generated = page.locator("input[name=name]").input_value()
    assert generated == "chengxiangdibaoduixianghuamingce"
    page.click("main form button[type=submit]")

    # 3. upload the 花名册 as it is; the page shows the detected header and the skipped rows
    page.wait_for_selector("#upload-form")
    page.set_input_files("#upload-form input[type=file]", str(ROSTER))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#sheet-grid")
    assert "第 3–4 行" in page.locator("#layout-summary").inner_text()
    skipped = " ".join(page.locator("#sheet-grid tr.role-skip td.role").all_inner_texts())
    for reason in ("标题行", "填报单位", "合计", "制表人"):
        assert reason in skipped, (reason, skipped)
    assert page.locator("select[name='type:出生日期'] option:checked").inner_text() == "日期"
    assert page.locator("select[name='type:保障金额（元）'] option:checked").inner_text() == "小数"
    shoot(s, "provider-confirm-header")

    # 4. 确认并提交: version 1 of the dataset, registered under its Chinese name
    page.click("#commit-form button[type=submit]")
    page.wait_for_selector(".flash-ok")
    assert "v1" in page.locator(".flash-ok").inner_text()
    assert page.locator("h1").first.inner_text().startswith(TITLE)
    assert page.locator("h1 .badge.pending").inner_text() == "待确认"  # the steward confirms the grade
    with demo.lab.read() as db:
        ds = catalog.get_by_name(db, generated)
        assert ds.title == TITLE and ds.row_count == 5
    assert_beijing(visible_text(s, "#versions"))
    xlsx = download(s, "#dl-dummy-xlsx")
    assert xlsx.name.startswith(f"{TITLE}-模拟数据-") and xlsx.suffix == ".xlsx"
    sheet = load_workbook(xlsx).active
    headers = [c.value for row in sheet.iter_rows(max_row=3) for c in row]
    assert "公民身份号码" in headers and "保障金额（元）" in headers

    # 5. 数据使用情况: which projects use the department's datasets, by name
    page.click("text=首页")
    page.click("#main a[href='/usage'], main a[href='/usage']")
    page.wait_for_url(demo.url + "/usage")
    table = visible_text(s, "main")
    assert "居家养老服务记录" in table and "乡镇（街道）" in table and "授权项目" in table
    page.click("main a:has-text('居家养老服务记录')")
    page.wait_for_selector("text=「居家养老服务记录」的使用情况")
    grants = visible_text(s, "main")
    assert "养老服务需求预测" in grants and "青禾康养科技有限公司" in grants
    assert_beijing(grants)
    shoot(s, "provider-usage")

    # 6. a database connector whose database is unreachable: the failure is a to-do
    with demo.lab.read() as db:
        care = catalog.get_by_name(db, "elderly_care_records").id
    s.go(f"/datasets/{care}/connectors")
    page.fill("#connector-form input[name=dsn]", "postgresql://reader:secret@127.0.0.1:9/minzheng")
    page.fill("#connector-form input[name=source_table]", "public.care_records")
    page.fill("#connector-form input[name=cursor_column]", "updated_at")
    page.click("#connector-form button[type=submit]")
    page.wait_for_selector("#connectors-table button:has-text('立即同步')")
    page.click("#connectors-table button:has-text('立即同步')")
    page.wait_for_load_state()
    assert "失败" in visible_text(s, "#connectors-table")
    page.click("text=首页")
    todo = page.locator('#todo li[data-kind="todo.connector_failed"]')
    assert todo.count() == 1
    assert "数据库同步失败：「居家养老服务记录」（源表 public.care_records）" in todo.inner_text()
    assert page.locator(".bell").get_attribute("data-unread") != "0"
    shoot(s, "provider-todo-connector")
    todo.locator("a").first.click()
    page.wait_for_url(f"{demo.url}/datasets/{care}/connectors")
    s.close("status of 4", "status of 5")
