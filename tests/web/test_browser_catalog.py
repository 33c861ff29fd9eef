"""The data catalog in Chromium: the dataset page for two roles, and the issue's "done when":
a provider uploads a GBK CSV from the browser and finds it by a Chinese search word."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from countylab.bootstrap import setup_demo
from countylab.catalog import service as catalog
from tests.browser import Session, live_server
from tests.support import build_lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    lab = build_lab(tmp_path_factory.mktemp("catalog-browser"), county_name="青禾县")
    report = setup_demo(lab, size="tiny", steps=False)
    with lab.tx() as s:
        ids = {name: catalog.get_by_name(s, name).id for name in ("residents", "households", "towns")}
        secret_names = catalog.get_dataset(s, ids["households"]).name
    try:
        with live_server(lab, demo_logins=report.logins) as url:
            yield {"url": url, "ids": ids, "lab": lab, "seed": lab.settings.seed_dir, "_": secret_names}
    finally:
        lab.close()


def _real_addresses(seed: Path, n: int = 50) -> set[str]:
    import csv

    with (seed / "households.csv").open(encoding="utf-8") as f:
        return {row["address"] for _, row in zip(range(n), csv.DictReader(f), strict=False)}


def test_developer_sees_dummy_rows_of_graded_data_and_real_rows_of_open_data(browser, demo, artifacts):
    s = Session(browser, demo["url"], artifacts, viewport={"width": 1280, "height": 900})
    s.login("developer")
    s.go(f"/datasets/{demo['ids']['households']}")
    assert "一般数据3级" in s.page.locator("#grade-badge").inner_text()
    label = s.page.locator("#preview-label")
    assert "模拟数据" in label.inner_text() and "dummy" in (label.get_attribute("class") or "")
    shown = s.page.locator("#preview-table").inner_text()
    assert not any(addr in shown for addr in _real_addresses(demo["seed"])), "a real address reached the page"
    assert s.page.locator("#grade-form").count() == 0 and s.page.locator("#upload-form").count() == 0
    # PII tags are visible, matched values are not
    assert "地址" in s.page.locator("#columns-table").inner_text()
    s.shot("catalog-01-developer-households-dummy")
    s.go(f"/datasets/{demo['ids']['towns']}")
    assert "real" in (s.page.locator("#preview-label").get_attribute("class") or "")
    s.shot("catalog-02-developer-towns-real")
    s.close()


def test_steward_sees_grade_form_and_bounds(browser, demo, artifacts):
    s = Session(browser, demo["url"], artifacts, viewport={"width": 1280, "height": 900})
    s.login("steward")
    s.go(f"/datasets/{demo['ids']['residents']}")
    assert s.page.locator("#grade-form").count() == 1
    assert (
        s.page.locator("#columns-table tr[data-column=income] input[name=upper]").input_value() == "300000.0"
    )
    s.page.select_option("#grade-form select[name=grade]", "general_3")
    s.page.click("#grade-form button[type=submit]")  # lowering without a reason is refused
    assert "理由" in s.page.locator(".flash-error").inner_text()
    assert "一般数据4级" in s.page.locator("#grade-badge").inner_text()
    s.shot("catalog-03-steward-residents")
    s.close()


def test_provider_uploads_a_gbk_csv_and_finds_it_by_a_chinese_word(browser, demo, artifacts):
    s = Session(browser, demo["url"], artifacts, viewport={"width": 1280, "height": 900})
    s.login("provider")
    s.go("/datasets/new")
    s.page.fill("input[name=name]", "care_enterprises")
    s.page.fill("input[name=title]", "养老服务机构名录")
    s.page.fill("input[name=tags]", "养老, 机构")
    s.page.select_option("select[name=privacy_unit]", "enterprise")
    s.page.click("main form button[type=submit]")
    s.page.wait_for_url("**/datasets/*")
    s.page.set_input_files("#upload-form input[type=file]", str(demo["seed"] / "enterprises_gbk.csv"))
    s.page.click("#upload-form button[type=submit]")
    s.page.wait_for_selector("#schema-table")
    assert "gb18030" in s.page.locator("main").inner_text()
    assert "青禾" in s.page.locator("main").inner_text()  # GBK decoded into readable Chinese
    s.shot("catalog-04-provider-confirm-schema")
    s.page.click("#commit-form button[type=submit]")
    s.page.wait_for_selector(".flash-ok")
    assert "v1" in s.page.locator(".flash-ok").inner_text()
    assert s.page.locator("#versions-table tbody tr").count() == 1
    s.shot("catalog-05-provider-committed")
    s.go("/datasets")
    s.page.fill("input[name=q]", "机构")
    s.page.click(".search-form button[type=submit]")
    names = s.page.locator("#dataset-list .dataset-card").evaluate_all("els => els.map(e => e.dataset.name)")
    assert "care_enterprises" in names
    s.shot("catalog-06-search")
    s.close()


def test_the_traffic_feed_visibly_updates(browser, demo, artifacts):
    """Rows pushed while the page is open appear without a reload (the page polls the API)."""
    from datetime import datetime

    from countylab.demo import feeds
    from countylab.identity.access import SYSTEM

    lab = demo["lab"]
    with lab.tx() as s:
        traffic = catalog.get_by_name(s, "traffic_counts").id
    s = Session(browser, demo["url"], artifacts, viewport={"width": 1280, "height": 900})
    s.login("leader")
    s.go(f"/datasets/{traffic}")
    assert s.page.locator("#live-rows").is_hidden()
    hour = datetime(2026, 12, 1, 8)
    rows = [
        {k: (v.isoformat(sep=" ") if isinstance(v, datetime) else v) for k, v in r.items()}
        for r in feeds.traffic_batch(1, hour, feeds.make_junctions(20261126))
    ]
    lab.ingestion.push(SYSTEM, traffic, rows, "browser-feed-1")
    s.page.wait_for_selector("#live-rows:not([hidden])", timeout=12_000)
    assert s.page.locator("#live-rows span").inner_text() == str(len(rows))
    s.shot("catalog-07-traffic-live")
    s.close()
