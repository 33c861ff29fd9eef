"""In Chromium: a department publishes a scenario, the public sees it on /public/scenarios without
logging in (internal ones never), and a developer applies from the dataset page (申请使用)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from countylab.lab import Lab
from tests.browser import Session, live_server
from tests.operations.conftest import World, build_world
from tests.support import PASSWORD, build_lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    lab: Lab = build_lab(tmp_path_factory.mktemp("scenarios-browser"), county_name="青禾县")
    world = build_world(lab)
    world.scenario("hidden", visibility="internal", title="困难群众精准救助（域内）")
    try:
        with live_server(lab) as url:
            yield world, url
    finally:
        lab.close()


def test_publish_see_publicly_and_apply_from_the_dataset_page(
    browser: Any, site: tuple[World, str], artifacts: Any
) -> None:
    world, url = site
    elderly = world.datasets["elderly"]
    # 1. the civil-affairs provider publishes a scenario offering two columns of 老年人口信息
    s = Session(browser, url, artifacts, viewport={"width": 1280, "height": 1000})
    s.login("civil", PASSWORD)
    s.go("/scenarios/new")
    s.page.fill("input[name=title]", "居家养老服务需求预测")
    s.page.fill("textarea[name=problem]", "独居老人分布不清，助餐点布局缺少依据。")
    s.page.fill("textarea[name=expected_outcome]", "分乡镇需求预测表。")
    s.page.select_option("select[name=field]", "elderly_care")
    s.page.fill("input[name=apply_until]", str(world.today.replace(year=world.today.year + 1)))
    s.page.check(f"input[name=dataset][value='{elderly}']")
    s.page.check(f"input[name=column][value='{elderly}:town']")
    s.page.check(f"input[name=column][value='{elderly}:age']")
    s.shot("scenario-publish-form")
    s.page.click("#scenario-form button[type=submit]")
    s.page.wait_for_url(f"{url}/scenarios/*")
    assert "征集中" in s.page.locator("#scenario-status").inner_text()
    assert "town" in s.page.locator("#offered").inner_text()
    s.shot("scenario-published")
    s.close()

    # 2. the public list, logged out: the published one, never the internal one
    p = Session(browser, url, artifacts, viewport={"width": 1280, "height": 900})
    p.go("/public/scenarios")
    listing = p.page.locator("#public-scenarios").inner_text()
    assert "居家养老服务需求预测" in listing and "民政局" in listing
    assert "域内" not in listing and "civil" not in p.page.content()
    p.shot("public-scenarios")
    p.page.click("text=居家养老服务需求预测")
    assert "老年人口信息" in p.page.content()
    p.close()

    # 3. the enterprise developer applies from the dataset page
    d = Session(browser, url, artifacts, viewport={"width": 1280, "height": 1400})
    d.login("dev", PASSWORD)
    d.go(f"/datasets/{elderly}")
    d.page.click("#apply-dataset")
    d.page.wait_for_url(f"{url}/applications/new?dataset={elderly}")
    assert "居家养老服务需求预测" in d.page.locator("select[name=scenario]").inner_text()
    d.page.fill("input[name=title]", "养老服务需求预测（青禾数智）")
    d.page.select_option("select[name=purpose]", "public_good")
    d.page.fill("input[name=starts_on]", str(world.today))
    d.page.fill("input[name=ends_on]", str(world.today.replace(year=world.today.year + 1)))
    d.page.check(f"input[name=column][value='{elderly}:town']")
    d.page.check("input[name=channel][value=dp_query]")
    d.page.fill("textarea[name=expected_outputs]", "分乡镇需求预测表")
    for box in d.page.locator("#commitment-list input[type=checkbox]").all():
        box.check()
    d.shot("application-form-from-dataset")
    d.page.click("#save-submit")
    d.page.wait_for_url(f"{url}/applications/*")
    assert "已提交" in d.page.locator("#application-status").inner_text()
    assert "SQ-" in d.page.content()
    d.shot("application-submitted")
    d.close()
