"""Issue 13's "Done when", end to end in real Chromium on the tiny demo county (every demo step):
a leader publishes a scenario offering two departments' datasets, a company developer applies from
the dataset page (申请使用), both departments consent, the security officer sets the channels and
budgets, the leader gives final approval, the 公示 shows on the public pages logged out, both sides
sign the PDF agreement, the project answers a DP query on an approved dataset and refuses anything
else with a clear message, and when the lab's clock passes the end date access stops.

Every step is a click of the user who takes it; only the clock is moved (``lab.clock``, the lab the
live server serves).  Screenshots ``done13-*.png`` feed the release note and the operator tutorial.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from countylab.errors import PermissionDenied
from countylab.storage.models import Dataset
from tests.browser import Session
from tests.operations.agreement_helpers import principal
from tests.walkthrough.world import Demo, demo_county, visible_text

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLE = "乡村老人助餐与农事帮扶需求分析"
APP_TITLE = "乡村老人助餐与农事帮扶需求模型（青禾康养）"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_county(tmp_path_factory.mktemp("done13")) as d:
        yield d


def shot(s: Session, name: str) -> Path:
    path = s.artifacts / f"done13-{name}.png"
    s.page.evaluate("window.scrollTo(0, 0)")  # a full-page shot of a scrolled page repeats the sticky header
    s.page.screenshot(path=str(path), full_page=True)
    return path


def _dataset(demo: Demo, name: str) -> int:
    with demo.lab.read() as s:
        return int(s.execute(select(Dataset.id).where(Dataset.name == name)).scalar_one())


def _job(root: Path) -> Path:
    """A sandbox job folder as the developer's terminal would submit it (one DP-approved dataset)."""
    folder = root / "job-farmland"
    folder.mkdir(exist_ok=True)
    (folder / "main.py").write_text("print('hi')\n")
    (folder / "countylab.yaml").write_text(
        "version: 1\nactions:\n  main:\n    run: python main.py\n    datasets: [farmland_plots]\n"
        "    outputs:\n      - {path: out.csv, kind: table}\n"
        "    resources: {cpu: 1, memory_mb: 256, time_s: 60}\n"
    )
    return folder


def _ask(api: Any, sql: str, project_id: int) -> Any:
    return api.post("/api/query", json={"sql": sql, "project_id": project_id, "epsilon": 0.5})


def _status(s: Session) -> str:
    return str(s.page.locator("#application-status").inner_text())


def _decide(demo: Demo, browser: Any, artifacts: Path, who: str, app_id: int, kind: str, name: str) -> None:
    s = demo.session(browser, who, artifacts)
    s.go(f"/applications/{app_id}")
    form = s.page.locator(f"#decide-{kind}")
    reason = form.locator("textarea[name=reason]")
    if reason.count():
        reason.fill(
            {"consent": "同意使用本部门数据，限本场景", "final": "同意，按安全审查条件执行"}.get(kind, "同意")
        )
    s.page.click(f"#{kind}-approve")
    s.page.wait_for_url(f"{demo.url}/applications/{app_id}")
    shot(s, name)
    s.close()


def test_scenario_to_authorised_project_and_its_end(browser: Any, demo: Demo, artifacts: Path) -> None:
    lab = demo.lab
    real_clock = lab.clock
    today = (lab.clock() + timedelta(hours=8)).date()  # the Beijing day the forms use
    elderly, farmland = _dataset(demo, "elderly_care_records"), _dataset(demo, "farmland_plots")

    # 1. the leader publishes a scenario offering 民政局's and 农业农村局's datasets
    leader = demo.session(browser, "leader", artifacts)
    leader.go("/scenarios/new")
    leader.page.fill("input[name=title]", TITLE)
    leader.page.fill(
        "textarea[name=problem]", "山区乡镇独居老人多、农忙时无人照料，助餐点和农事帮扶队的布点缺少依据。"
    )
    leader.page.fill(
        "textarea[name=expected_outcome]", "分乡镇的助餐与农事帮扶需求表，供民政、农业部门联合布点。"
    )
    leader.page.select_option("select[name=field]", "elderly_care")
    leader.page.fill("input[name=apply_until]", str(today + timedelta(days=60)))
    leader.page.check(f"#scenario-form input[name=dataset][value='{elderly}']")
    leader.page.check(f"#scenario-form input[name=dataset][value='{farmland}']")
    shot(leader, "01-leader-publishes-scenario")
    leader.page.click("#scenario-form button[type=submit]")
    leader.page.wait_for_url(re.compile(r".*/scenarios/\d+$"))
    scenario_id = int(leader.page.url.rsplit("/", 1)[1])
    assert "征集中" in leader.page.locator("#scenario-status").inner_text()
    shot(leader, "02-scenario-published")

    # 2. the company developer applies from the dataset page (申请使用)
    dev = demo.session(browser, "developer", artifacts)
    dev.page.set_viewport_size({"width": 1280, "height": 1400})
    dev.go(f"/datasets/{elderly}")
    dev.page.click("#apply-dataset")
    dev.page.wait_for_url(re.compile(rf".*/applications/new\?dataset={elderly}.*"))
    if f'value="{scenario_id}" selected' not in dev.page.content():
        dev.page.select_option("#choose-scenario select[name=scenario]", str(scenario_id))
        dev.page.click("#choose-scenario button[type=submit]")
        dev.page.wait_for_url(re.compile(rf".*scenario={scenario_id}.*"))
    form = dev.page.locator("#application-form")
    form.locator("input[name=title]").fill(APP_TITLE)
    form.locator("select[name=purpose]").select_option("industry")
    form.locator("input[name=starts_on]").fill(str(today))
    form.locator("input[name=ends_on]").fill(str(today + timedelta(days=30)))
    form.locator(f"input[name=dataset][value='{elderly}']").check()
    form.locator(f"input[name=dataset][value='{farmland}']").check()
    form.locator("input[name=channel][value=dp_query]").check()
    form.locator("input[name=channel][value=sandbox_job]").check()
    form.locator("textarea[name=expected_outputs]").fill("分乡镇助餐与农事帮扶需求表（差分隐私统计，附区间）")
    for box in dev.page.locator("#commitment-list input[type=checkbox]").all():
        box.check()
    shot(dev, "03-developer-applies-from-dataset")
    dev.page.click("#save-submit")
    dev.page.wait_for_url(re.compile(r".*/applications/\d+$"))
    app_id = int(dev.page.url.rsplit("/", 1)[1])
    assert "已提交" in _status(dev)
    shot(dev, "04-application-submitted")

    # 3. the operator pre-checks the materials
    op = demo.session(browser, "operator", artifacts)
    op.go("/reviews")
    assert APP_TITLE in op.page.locator("#review-queue").inner_text()
    shot(op, "05-operator-review-queue")
    op.go(f"/applications/{app_id}")
    op.page.click("#precheck-pass")
    op.page.wait_for_url(f"{demo.url}/applications/{app_id}")
    steps = op.page.locator("#workflow").inner_text()
    assert "县民政局" in steps and "县农业农村局" in steps, steps

    # 4. both departments consent, each for its own dataset
    _decide(demo, browser, artifacts, "provider", app_id, "consent", "06-civil-affairs-consents")
    _decide(demo, browser, artifacts, "provider_agri", app_id, "consent", "07-agriculture-consents")

    # 5. the security officer keeps DP queries only and sets the budgets (ε per dataset)
    sec = demo.session(browser, "steward", artifacts)
    sec.page.set_viewport_size({"width": 1280, "height": 1600})
    sec.go(f"/applications/{app_id}")
    sec.page.uncheck("#decide-security input[name=channel][value=sandbox_job]")
    sec.page.fill(f"#decide-security input[name=eps_{elderly}]", "1")
    sec.page.fill(f"#decide-security input[name=eps_{farmland}]", "1")
    conditions = sec.page.locator("#decide-security textarea[name=conditions]")
    if conditions.count():
        conditions.fill("结果按乡镇汇总，单元格不少于 10 人")
    shot(sec, "08-steward-sets-budgets")
    sec.page.click("#security-approve")
    sec.page.wait_for_url(f"{demo.url}/applications/{app_id}")
    assert "终审" in sec.page.locator("#workflow").inner_text()
    sec.close()

    # 6. the leader gives the final approval: the 公示 starts
    _decide(demo, browser, artifacts, "leader", app_id, "final", "09-leader-final-approval")
    leader.go(f"/applications/{app_id}")
    assert "公示中" in _status(leader)

    # 7. logged out, the notice is on the public pages (the organisation, never a person)
    pub = Session(browser, demo.url, artifacts, viewport={"width": 1280, "height": 900})
    pub.go("/public/notices")
    listing = pub.page.locator("#public-notices").inner_text()
    assert APP_TITLE in listing and "青禾康养科技有限公司" in listing
    shot(pub, "10-public-notice-list")
    pub.page.click(f"text={APP_TITLE}")
    notice = pub.page.content()
    assert "差分隐私查询" in notice and "沙箱作业" not in notice and "刘开发" not in notice
    shot(pub, "11-public-notice")
    pub.close()

    # 8. the notice period (5 days) passes without objection; the operator ends it and drafts the agreement
    lab.clock = lambda: real_clock() + timedelta(days=6)
    op.go(f"/applications/{app_id}")
    if op.page.locator("#conclude").count():
        op.page.click("#conclude")
        op.page.wait_for_url(f"{demo.url}/applications/{app_id}")
    assert "已批准" in _status(op), _status(op)
    op.page.click("#draft-agreement-form button[type=submit]")
    op.page.wait_for_load_state()
    op.go(f"/applications/{app_id}")
    agreement_href = op.page.locator("#agreement-link").get_attribute("href")
    assert agreement_href

    # 9. both sides sign the PDF agreement (password asked again), the developer first
    dev.go(agreement_href)
    assert dev.page.locator("#agreement-pdf").is_visible()
    pdf = dev.context.request.get(demo.url + agreement_href + "/pdf")
    assert pdf.ok and pdf.body()[:5] == b"%PDF-"
    shot(dev, "12-agreement-before-signing")
    for s in (dev, op):
        s.go(agreement_href)
        s.page.fill("#sign-form input[name=password]", "Demo@2026")
        s.page.click("#sign-form button[type=submit]")
        s.page.wait_for_load_state()
    op.go(agreement_href)
    assert op.page.locator("#authorised-project").is_visible()
    shot(op, "13-agreement-signed-in-force")
    project_href = op.page.locator("#authorised-project a").get_attribute("href")
    assert project_href
    project_id = int(project_href.rsplit("/", 1)[1])
    op.close()

    # 10. the project works with exactly the approved datasets and channels
    dev.go(f"/query?project_id={project_id}")
    dev.page.fill("#query-form textarea[name=sql]", "SELECT COUNT(*) FROM elderly_care_records")
    dev.page.click("#run-query")
    dev.page.wait_for_selector("#query-result .result-table")
    shot(dev, "14-dp-query-on-approved-dataset")
    dev.page.fill("#query-form textarea[name=sql]", "SELECT COUNT(*) FROM residents")
    dev.page.click("#run-query")
    dev.page.wait_for_selector("#query-error:not([hidden])")
    refused = dev.page.locator("#query-error").inner_text()
    assert "residents" in refused, refused
    assert dev.page.locator("#query-result .result-table").count() == 0  # no earlier answer under it
    shot(dev, "15-non-approved-dataset-refused")
    api = demo.api("developer")
    ok = _ask(api, "SELECT COUNT(*) FROM farmland_plots", project_id)
    assert ok.status_code == 200, ok.text
    no = _ask(api, "SELECT COUNT(*) FROM residents", project_id)
    assert no.status_code in (403, 404, 422) and "residents" in no.text
    # sandbox jobs were not approved (the security review kept DP queries only)
    with pytest.raises(PermissionDenied) as channel, lab.tx() as s:
        lab.jobs.service.submit(s, principal(lab, "developer"), project_id, _job(demo.root))
    assert channel.value.details["reason"] == "channel"
    assert "沙箱" in channel.value.message_zh, channel.value.message_zh

    # 11. the end date passes: queries stop with a message naming the application and the date
    end = today + timedelta(days=30)
    lab.clock = lambda: real_clock() + timedelta(days=32)
    try:
        late = _ask(api, "SELECT COUNT(*) FROM elderly_care_records", project_id)
        assert late.status_code == 403, late.text
        assert end.isoformat() in late.json()["error"]["message"]
        dev.go(f"/query?project_id={project_id}")
        dev.page.fill("#query-form textarea[name=sql]", "SELECT COUNT(*) FROM elderly_care_records")
        dev.page.click("#run-query")
        dev.page.wait_for_selector("#query-error:not([hidden])")
        ended = dev.page.locator("#query-error").inner_text()
        assert end.isoformat() in ended, ended
        shot(dev, "16-access-stops-after-end-date")
        assert visible_text(dev)
    finally:
        lab.clock = real_clock
    dev.close("status of 422", "status of 403")  # the refused queries, shown in #query-error
    leader.close()
