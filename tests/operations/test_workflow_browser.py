"""In Chromium: the operator pre-checks an application, the owning department consents, the
security officer sets the terms, and the 公示 appears on the public notices page logged out;
the review queue and the operator's view show it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from countylab.lab import Lab
from tests.browser import Session, live_server
from tests.operations.conftest import World, build_world
from tests.operations.workflow_helpers import status, submitted
from tests.support import PASSWORD, build_lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    lab: Lab = build_lab(tmp_path_factory.mktemp("workflow-browser"), county_name="青禾县")
    world = build_world(lab)
    try:
        with live_server(lab) as url:
            yield world, url
    finally:
        lab.close()


def test_precheck_consent_security_then_public_notice(
    browser: Any, site: tuple[World, str], artifacts: Any
) -> None:
    world, url = site
    app_id = submitted(world, datasets=("crops",), channels=("dp_query", "sandbox_job"), title="水稻估产模型")

    # 1. the operator sees it waiting and passes the pre-check on the application's page
    op = Session(browser, url, artifacts, viewport={"width": 1280, "height": 1000})
    op.login("operator", PASSWORD)
    op.go("/reviews")
    assert "水稻估产模型" in op.page.locator("#review-queue").inner_text()
    op.shot("workflow-reviews-operator")
    op.page.click(f"#review-queue a[href='/applications/{app_id}']")
    op.page.wait_for_url(f"{url}/applications/{app_id}")
    op.page.click("#precheck-pass")
    op.page.wait_for_url(f"{url}/applications/{app_id}")
    assert "审批中" in op.page.locator("#application-status").inner_text()
    steps = op.page.locator("#workflow").inner_text()
    assert "部门同意" in steps and "农业农村局" in steps
    op.shot("workflow-after-precheck")

    # 2. the department owning the dataset consents
    dept = Session(browser, url, artifacts, viewport={"width": 1280, "height": 1100})
    dept.login("agri", PASSWORD)
    dept.go(f"/applications/{app_id}")
    assert dept.page.locator("#decide-consent").is_visible()
    dept.page.fill("#decide-consent textarea[name=reason]", "同意使用本局种植面积数据")
    dept.page.click("#consent-approve")
    dept.page.wait_for_url(f"{url}/applications/{app_id}")
    assert "已提交审批意见" in dept.page.content()
    dept.shot("workflow-consent")
    dept.close()

    # 3. the security officer narrows the channels and a column, and sets ε
    sec = Session(browser, url, artifacts, viewport={"width": 1280, "height": 1600})
    sec.login("steward", PASSWORD)
    sec.go(f"/applications/{app_id}")
    crops = world.datasets["crops"]
    sec.page.uncheck("#decide-security input[name=channel][value=sandbox_job]")
    sec.page.uncheck(f"#decide-security input[name=col_{crops}][value=crop]")
    sec.page.fill(f"#decide-security input[name=eps_{crops}]", "99")
    sec.shot("workflow-security-form")
    sec.page.click("#security-approve")
    sec.page.wait_for_url(f"{url}/applications/{app_id}")
    assert "ε" in sec.page.locator(".flash").inner_text()  # over the grade's limit: refused, said why
    assert status(world, app_id) == "in_review"
    sec.page.uncheck("#decide-security input[name=channel][value=sandbox_job]")
    sec.page.fill(f"#decide-security input[name=eps_{crops}]", "1.5")
    sec.page.fill("#decide-security textarea[name=conditions]", "结果按乡镇汇总")
    sec.page.click("#security-approve")
    sec.page.wait_for_url(f"{url}/applications/{app_id}")
    assert "公示中" in sec.page.locator("#application-status").inner_text()
    sec.shot("workflow-publicising")
    sec.close()

    # 4. logged out: the notice is on the public page, naming the organisation, not the person
    pub = Session(browser, url, artifacts, viewport={"width": 1280, "height": 900})
    pub.go("/public/notices")
    listing = pub.page.locator("#public-notices").inner_text()
    assert "水稻估产模型" in listing and "青禾数智科技有限公司" in listing
    pub.shot("public-notices")
    pub.page.click("text=水稻估产模型")
    assert "农作物种植面积" in pub.page.locator("#notice-datasets").inner_text()
    assert "差分隐私查询" in pub.page.content() and "沙箱作业" not in pub.page.content()
    assert "登录后可提出异议" in pub.page.content()
    pub.shot("public-notice")
    pub.close()

    # 5. the operator's view counts it in 公示
    op.go("/ops")
    assert op.page.locator("#stage-counts [data-stage=publicising] strong").inner_text() == "1"
    op.shot("workflow-ops")
    op.close()
