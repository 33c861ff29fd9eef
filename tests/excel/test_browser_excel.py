"""Excel in and out in Chromium: a clerk registers a dataset by its Chinese title only, uploads
a 花名册 as it is, sees the detected header and the skipped rows, corrects nothing, commits, and
downloads dummy data as XLSX with the Chinese headers."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from countylab.catalog import service as catalog
from tests.browser import Session, live_server
from tests.excel.rosters import PEOPLE, roster_xlsx
from tests.support import PASSWORD, build_lab, create_user

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("excel-browser")
    lab = build_lab(root)
    create_user(lab, "clerk", ["provider"], org="城关镇民政办")
    roster = root / "城关镇低保花名册.xlsx"
    roster.write_bytes(roster_xlsx())
    try:
        with live_server(lab) as url:
            yield {"url": url, "lab": lab, "roster": roster}
    finally:
        lab.close()


def test_clerk_registers_by_title_uploads_a_roster_and_downloads_xlsx(browser, site, artifacts):
    s = Session(browser, site["url"], artifacts, viewport={"width": 1400, "height": 900})
    s.login("clerk", PASSWORD)
    s.go("/datasets/new")
    s.page.fill("input[name=title]", "城乡低保对象花名册")
    s.page.click("main form button[type=submit]")
    s.page.wait_for_selector("#name-generated")
    assert s.page.locator("input[name=name]").input_value() == "chengxiangdibaoduixianghuamingce"
    s.shot("excel-01-generated-identifier")
    s.page.fill("input[name=name]", "dibao_roster")  # editable before saving
    s.page.click("main form button[type=submit]")
    s.page.wait_for_selector("#upload-form")
    s.page.set_input_files("#upload-form input[type=file]", str(site["roster"]))
    s.page.click("#upload-form button[type=submit]")
    s.page.wait_for_selector("#sheet-grid")
    assert "第 3–4 行" in s.page.locator("#layout-summary").inner_text()
    header_rows = s.page.locator("#sheet-grid tr.role-header").evaluate_all(
        "els => els.map(e => e.dataset.row)"
    )
    assert header_rows == ["3", "4"]
    skipped = dict(
        zip(
            s.page.locator("#sheet-grid tr.role-skip").evaluate_all("els => els.map(e => e.dataset.row)"),
            s.page.locator("#sheet-grid tr.role-skip td.role").all_inner_texts(),
            strict=True,
        )
    )
    assert "标题行" in skipped["1"] and "填报单位" in skipped["2"]
    assert "合计" in skipped["10"] and "制表人" in skipped["12"]
    assert s.page.locator("input[name='name:出生日期']").input_value() == "chushengriqi"
    born = s.page.locator("select[name='type:出生日期'] option:checked").inner_text()
    assert born == "日期"
    s.shot("excel-02-confirm-detected-header")
    # read again with another header row: nothing is written, the page shows the choice
    s.page.fill("#layout-form input[name=header_row]", "4")
    s.page.click("#layout-form button[type=submit]")
    s.page.wait_for_selector("#sheet-grid tr.role-header")
    assert s.page.locator("#sheet-grid tr.role-header").evaluate_all(
        "els => els.map(e => e.dataset.row)"
    ) == ["4"]
    s.page.fill("#layout-form input[name=header_row]", "3")
    s.page.click("#layout-form button[type=submit]")
    s.page.wait_for_selector("#commit-form")
    assert s.page.locator("#sheet-grid tr.role-header").count() == 2
    # the English UI says the same in English
    confirm_url = s.page.url
    s.go("/lang/en")
    s.page.goto(confirm_url)
    assert "skipped: title row" in s.page.locator("#sheet-grid").inner_text()
    assert s.page.locator("select[name='type:出生日期'] option:checked").inner_text() == "date"
    s.shot("excel-02b-confirm-english")
    s.go("/lang/zh-CN")
    s.page.goto(confirm_url)
    s.page.click("#commit-form button[type=submit]")
    s.page.wait_for_selector(".flash-ok")
    assert "v1" in s.page.locator(".flash-ok").inner_text()
    with site["lab"].read() as db:
        ds = catalog.get_by_name(db, "dibao_roster")
        assert ds.row_count == len(PEOPLE)
        titles = {c.name: c.title for c in catalog.columns(db, ds.id)}
    assert titles["gongminshenfenhaoma"] == "公民身份号码"
    s.shot("excel-03-committed")
    with s.page.expect_download() as info:
        s.page.click("#dl-dummy-xlsx")
    download = info.value
    assert download.suggested_filename.startswith("城乡低保对象花名册-模拟数据-")
    ws = load_workbook(io.BytesIO(Path(download.path()).read_bytes())).active
    assert "姓名" in [c.value for c in ws[2]] and "公民身份号码" in [c.value for c in ws[2]]
    s.close()
