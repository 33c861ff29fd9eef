"""Editing a published scenario (场景修订), on SQLite and PostgreSQL: every edit is a new version
with who, when and why; the public view shows the current version and 更新于; subscribers hear of
it; applications already submitted keep the offer they were submitted under while a new one
meets the new offer; refusals store nothing.  Through the service, the API, the CLI and the
edit form in Chromium."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from countylab.cli import app as cli
from countylab.errors import Conflict, PermissionDenied, ValidationFailed
from countylab.operations import applications, public, scenario_versions, subscriptions
from countylab.operations import scenarios as sv
from countylab.operations.applications import ApplicationInput, RequestedDataset
from countylab.operations.scenarios import Offer, ScenarioInput
from countylab.storage.models import AuditEvent
from countylab.storage.notify_models import Notification, NotificationRecipient
from countylab.storage.operations_models import Scenario, ScenarioVersion
from tests.browser import Session, live_server
from tests.operations.conftest import World
from tests.operations.workflow_helpers import precheck, status
from tests.support import PASSWORD, api_client, audit_actions, token_for


def _edited(w: World, **over: object) -> ScenarioInput:
    base: dict[str, object] = {
        "title": "居家养老服务需求预测（修订）",
        "problem": "独居老人分布不清；新增助餐需求。",
        "org_id": None,
        "field": "elderly_care",
        "offers": (Offer(w.datasets["elderly"], ("town", "age")),),
        "expected_outcome": "按村给出需求预测。",
        "apply_from": w.today - timedelta(days=1),
        "apply_until": w.today + timedelta(days=90),
    }
    base.update(over)
    return ScenarioInput(**base)  # type: ignore[arg-type]


def _edit(w: World, sid: int, by: str = "civil", reason: str = "补充助餐需求", **over: object) -> Scenario:
    with w.lab.tx() as s:
        sc = scenario_versions.edit(s, w.principal(by), sid, _edited(w, **over), reason)
        s.expunge(sc)
        return sc


def _count(w: World, model: type, **where: object) -> int:
    with w.lab.read() as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return int(s.execute(q).scalar_one())


def _application(w: World, sid: int, columns: tuple[str, ...] | None, *, submit: bool = True) -> int:
    actor = w.principal("gov_dev")  # an in-domain developer: 核心 data may be asked for
    with w.lab.tx() as s:
        from countylab.identity.access import SYSTEM
        from countylab.operations import accreditation

        if not accreditation.current(s, w.users["gov_dev"], w.today):
            accreditation.record(
                s, SYSTEM, user_id=w.users["gov_dev"], course="数据安全培训", certificate_no="AQ-g",
                passed_on=w.today - timedelta(days=10), expires_on=w.today + timedelta(days=500),
            )  # fmt: skip
        made = applications.create(
            s,
            actor,
            ApplicationInput(
                scenario_id=sid,
                title="养老需求预测",
                purpose="public_good",
                datasets=(
                    RequestedDataset(w.datasets["elderly"], columns),
                    RequestedDataset(w.datasets["assistance"]),
                ),
                channels=("dp_query",),
                starts_on=w.today + timedelta(days=7),
                ends_on=w.today + timedelta(days=300),
                expected_outputs="分乡镇预测",
                commitments=tuple(applications.COMMITMENTS),
            ),
            today=w.today,
        )
        if submit:
            applications.submit(s, actor, made.id, today=w.today)
        return made.id


def test_edit_makes_a_version_with_who_when_why(world: World) -> None:
    w = world
    with w.lab.tx() as s:
        subscriptions.subscribe(s, w.principal("dev"), ["elderly_care"])
        subscriptions.subscribe(s, w.principal("researcher"), ["agriculture"])
    sid = w.scenario("edit", columns={"elderly": ("town", "age", "lives_alone")})
    with w.lab.read() as s:
        assert public.public_scenario(s, sid).edited_at is None  # type: ignore[union-attr]
        assert sv.view(s, sv.get(s, w.principal("civil"), sid))["version"] == 1
    _edit(w, sid)
    with w.lab.read() as s:
        sc = s.get(Scenario, sid)
        assert sc is not None and sc.title == "居家养老服务需求预测（修订）"
        assert sc.apply_until == w.today + timedelta(days=90)
        offers = [(o.dataset_id, o.columns) for o, _ in sv.offers_of(s, sid)]
        assert offers == [(w.datasets["elderly"], ["town", "age"])]  # assistance dropped, columns narrowed
        hist = scenario_versions.view_versions(s, sid)
        assert [h["version"] for h in hist] == [2, 1]
        assert hist[0]["reason"] == "补充助餐需求" and hist[0]["edited_by"] == w.users["civil"]
        assert hist[0]["edited_by_name"].startswith("周民政")
        assert hist[1]["title"] == "场景 edit" and hist[1]["datasets"] == [
            w.datasets["elderly"],
            w.datasets["assistance"],
        ]  # version 1 is the scenario as published
        pub = public.public_scenario(s, sid)
        assert pub is not None and pub.version == 2 and pub.edited_at is not None
        assert pub.title.endswith("（修订）") and pub.datasets == ["老年人口信息"]
        ev = s.execute(
            select(AuditEvent).where(
                AuditEvent.action == "scenario.edit", AuditEvent.target == f"scenario:{sid}"
            )
        ).scalar_one()
        facts = json.loads(ev.details) if isinstance(ev.details, str) else ev.details
        assert facts["reason"] == "补充助餐需求" and facts["version"] == 2
        assert {"title", "offers", "apply_until"} <= set(facts["changed"])

        def told(user: str) -> list[str]:
            q = (
                select(Notification.facts)
                .join(NotificationRecipient, NotificationRecipient.notification_id == Notification.id)
                .where(
                    NotificationRecipient.user_id == w.users[user], Notification.kind == "scenario.updated"
                )
            )
            return [str(f.get("reason")) for f in s.execute(q).scalars()]

        assert told("dev") == ["补充助餐需求"]  # subscribed to the field
        assert told("researcher") == []  # another field
        assert told("civil") == []  # the editor is not told of their own edit
    # a second edit is version 3
    _edit(w, sid, reason="延长征集期", apply_until=w.today + timedelta(days=120))
    with w.lab.read() as s:
        assert scenario_versions.current_version(s, sid) == 3
        assert _count(w, ScenarioVersion, scenario_id=sid) == 3


def test_refusals_store_nothing(world: World) -> None:
    w = world
    sid = w.scenario("refuse")
    before = _count(w, ScenarioVersion)

    def unchanged() -> None:
        with w.lab.read() as s:
            sc = s.get(Scenario, sid)
            assert sc is not None and sc.title == "场景 refuse"
            assert len(sv.offers_of(s, sid)) == 2
        assert _count(w, ScenarioVersion) == before
        assert ("scenario.edit", "civil", "ok") not in audit_actions(w.lab)

    with pytest.raises(PermissionDenied) as denied:
        _edit(w, sid, by="agri")  # another department
    assert "责任部门" in denied.value.message("zh-CN") and "owning department" in denied.value.message("en")
    with pytest.raises(PermissionDenied):
        _edit(w, sid, by="dev")  # a developer may not publish at all
    with pytest.raises(ValidationFailed) as empty:
        _edit(w, sid, reason="  ")
    assert empty.value.message("zh-CN") == "请填写理由" and empty.value.message("en") == "Give a reason"
    with pytest.raises(ValidationFailed) as unknown:
        _edit(w, sid, offers=(Offer(999_999),))
    assert "#999999" in unknown.value.message("zh-CN") and "does not exist" in unknown.value.message("en")
    with pytest.raises(ValidationFailed) as col:
        _edit(w, sid, offers=(Offer(w.datasets["elderly"], ("town", "salary")),))
    assert "salary" in col.value.message("zh-CN") and "salary" in col.value.message("en")
    unchanged()
    with w.lab.tx() as s:
        sv.change_status(s, w.principal("civil"), sid, "closed", "需求已由其他项目满足")
    with pytest.raises(Conflict) as closed:
        _edit(w, sid)
    assert "已关闭" in closed.value.message("zh-CN") and "Closed" in closed.value.message("en")
    unchanged()
    # the operator and a leader may edit any department's scenario
    other = w.scenario("by-operator")
    _edit(w, other, by="operator", reason="运营方校正文字")
    with w.lab.read() as s:
        assert scenario_versions.current_version(s, other) == 2


def test_submitted_applications_keep_their_offer(world: World) -> None:
    w = world
    sid = w.scenario("keep", columns={"elderly": ("town", "age", "lives_alone")})
    kept = _application(w, sid, ("town", "age"))
    draft = _application(w, sid, ("town", "age"), submit=False)
    _edit(w, sid, offers=(Offer(w.datasets["elderly"], ("town",)),), reason="收窄字段")
    with w.lab.read() as s:
        from countylab.storage.operations_models import Application

        row = s.get(Application, kept)
        assert row is not None and row.scenario_version == 1
    # the submitted one was returned and is resubmitted unchanged: held to version 1's offer
    precheck(w, kept, "return", "请补充材料")
    assert status(w, kept) == "returned"
    with w.lab.tx() as s:
        applications.submit(s, w.principal("gov_dev"), kept, today=w.today)
    assert status(w, kept) == "submitted"
    # the draft meets the new offer: age is no longer offered, assistance no longer offered
    with pytest.raises(ValidationFailed) as refused, w.lab.tx() as s:
        applications.submit(s, w.principal("gov_dev"), draft, today=w.today)
    assert "场景" in refused.value.message("zh-CN") and "does not offer" in refused.value.message("en")
    assert status(w, draft) == "draft"
    # a new application sees the new offer
    with pytest.raises(ValidationFailed):
        _application(w, sid, ("town", "age"))
    with w.lab.tx() as s:
        made = applications.create(
            s,
            w.principal("gov_dev"),
            ApplicationInput(
                scenario_id=sid,
                title="新申请",
                datasets=(RequestedDataset(w.datasets["elderly"], ("town",)),),
            ),
            today=w.today,
        )
        assert made.scenario_version is None  # set at submission


def test_api_and_cli(sqlite_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = sqlite_world
    sid = w.scenario("api")
    civil = api_client(w.lab, w.users["civil"])
    body = {
        "title": "API 修订",
        "problem": "问题",
        "field": "elderly_care",
        "datasets": [{"dataset_id": w.datasets["elderly"], "columns": ["town"]}],
        "reason": "",
    }
    empty = civil.put(f"/api/scenarios/{sid}", json=body)
    assert empty.status_code == 422 and "请填写理由" in empty.text, empty.text
    bad = civil.put(
        f"/api/scenarios/{sid}",
        json={
            **body,
            "reason": "改",
            "datasets": [{"dataset_id": w.datasets["elderly"], "columns": ["nope"]}],
        },
    )
    assert bad.status_code == 422 and "nope" in bad.text
    denied = api_client(w.lab, w.users["agri"]).put(f"/api/scenarios/{sid}", json={**body, "reason": "改"})
    assert denied.status_code == 403
    ok = civil.put(f"/api/scenarios/{sid}", json={**body, "reason": "改标题"})
    assert ok.status_code == 200 and ok.json()["version"] == 2 and ok.json()["title"] == "API 修订"
    hist = civil.get(f"/api/scenarios/{sid}/versions").json()["items"]
    assert [h["version"] for h in hist] == [2, 1] and hist[0]["reason"] == "改标题"
    monkeypatch.setenv("COUNTYLAB_LANG", "zh-CN")
    runner = CliRunner()
    with live_server(w.lab) as base:
        who = ["--url", base, "--token", token_for(w.lab, w.users["civil"])]
        no_reason = runner.invoke(cli, ["scenario", "edit", str(sid), "--title", "x", *who])
        assert no_reason.exit_code != 0
        res = runner.invoke(
            cli, ["scenario", "edit", str(sid), "--title", "CLI 修订", "--reason", "命令行修改", *who]
        )
        assert res.exit_code == 0 and "3" in res.output, res.output
        bad = runner.invoke(
            cli,
            [
                "scenario",
                "edit",
                str(sid),
                "--dataset",
                f"{w.datasets['elderly']}:ghost",
                "--reason",
                "r",
                *who,
            ],
        )
        assert bad.exit_code != 0 and "ghost" in (bad.output + str(bad.exception)), bad.output
    with w.lab.read() as s:
        sc = s.get(Scenario, sid)
        assert sc is not None and sc.title == "CLI 修订" and sc.problem == "问题"  # the rest unchanged
        assert [(o.dataset_id, o.columns) for o, _ in sv.offers_of(s, sid)] == [
            (w.datasets["elderly"], ["town"])
        ]
        assert scenario_versions.current_version(s, sid) == 3


@pytest.mark.browser
@pytest.mark.slow
def test_edit_form_saves_and_public_page_shows_it(sqlite_world: World, browser: Any, artifacts: Any) -> None:
    w = sqlite_world
    sid = w.scenario("browser", columns={"elderly": ("town", "age")})
    with live_server(w.lab) as base:
        s = Session(browser, base, artifacts, viewport={"width": 1280, "height": 1000})
        s.login("civil", PASSWORD)
        s.go(f"/scenarios/{sid}")
        s.page.click("#edit-scenario")
        assert s.page.input_value("input[name=title]") == "场景 browser"  # the form holds the current text
        s.page.fill("input[name=title]", "浏览器修订的场景")
        s.page.click("#edit-save")  # no reason: the browser's own required check stops it
        assert s.page.url.endswith(f"/scenarios/{sid}/edit")
        s.page.fill("#edit-reason", "更新标题")
        s.page.click("#edit-save")
        s.page.wait_for_url(f"{base}/scenarios/{sid}")
        assert "浏览器修订的场景" in s.page.inner_text("h1")
        assert "更新标题" in s.page.inner_text("#scenario-history")
        s.shot("scenario-edit")
        s.go(f"/public/scenarios/{sid}")
        assert "浏览器修订的场景" in s.page.inner_text("h1")
        updated = s.page.inner_text("#scenario-updated")
        assert "更新于" in updated and "第 2 版" in updated
        s.close()
