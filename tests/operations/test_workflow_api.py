"""The workflow through the JSON API and the pages (SQLite): pre-check, consent, security with
terms, notice on the public page without login, objection filed and dismissed, operator's view
and its Excel export, the configuration page, and the review queue."""

from __future__ import annotations

import io
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from countylab.notify.messages import aware
from countylab.operations.publicity import notice_of
from countylab.web.app import create_app
from tests.operations.conftest import World
from tests.operations.workflow_helpers import status, submitted
from tests.support import api_client, browser_login


def test_workflow_through_the_api_and_pages(sqlite_world: World) -> None:
    world = sqlite_world
    lab = world.lab
    app_id = submitted(world, datasets=("crops",), channels=("dp_query", "sandbox_job"))
    op = api_client(lab, world.users["operator"])
    agri = api_client(lab, world.users["agri"])
    steward = api_client(lab, world.users["steward"])
    dev = api_client(lab, world.users["dev"])

    queue = op.get("/api/reviews").json()
    assert [(i["application_id"], i["step"]) for i in queue["items"]] == [(app_id, "precheck")]
    assert agri.get("/api/reviews").json()["count"] == 0  # nothing for the department yet

    r = op.post(f"/api/applications/{app_id}/decisions", json={"step": "precheck", "decision": "return"})
    assert r.status_code in (400, 422) and "理由" in r.json()["error"]["message"]
    r = op.post(f"/api/applications/{app_id}/decisions", json={"step": "precheck", "decision": "pass"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_review"
    r = op.post(f"/api/applications/{app_id}/decisions", json={"step": "precheck", "decision": "pass"})
    assert r.status_code == 409 and "已" in r.json()["error"]["message"]

    assert [i["step"] for i in agri.get("/api/reviews").json()["items"]] == ["consent"]
    r = dev.post(f"/api/applications/{app_id}/decisions", json={"step": "consent", "decision": "approve"})
    assert r.status_code == 403
    r = agri.post(f"/api/applications/{app_id}/decisions", json={"step": "consent", "decision": "approve"})
    assert r.status_code == 200, r.text

    ds = world.datasets["crops"]
    r = steward.post(
        f"/api/applications/{app_id}/decisions",
        json={
            "step": "security",
            "decision": "approve",
            "channels": ["dp_query"],
            "columns": {str(ds): ["town", "crop"]},
            "budgets": {str(ds): [1.0, 1e-8]},
            "conditions": "结果按乡镇汇总",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "publicising"

    wf = dev.get(f"/api/applications/{app_id}/workflow").json()
    assert [s["kind"] for s in wf["rounds"][0]["steps"]] == ["precheck", "consent", "security"]
    assert wf["notice"]["status"] == "open"
    notice_id = wf["notice"]["id"]

    # the public page, logged out: the organisation and datasets, no personal names
    anon = TestClient(create_app(lab))
    page = anon.get("/public/notices")
    assert page.status_code == 200 and "农作物估产模型" in page.text
    detail = anon.get(f"/public/notices/{notice_id}")
    assert detail.status_code == 200
    assert "青禾数智科技有限公司" in detail.text and "农作物种植面积" in detail.text
    assert "dev" not in re.sub(r"<[^>]+>", " ", detail.text).split()  # the applicant's name is not shown
    refused = anon.post(
        f"/notices/{notice_id}/objections", data={"reason": "我反对这个申请"}, follow_redirects=False
    )
    assert refused.status_code in (303, 401, 403) and "/login" in refused.headers.get("location", "/login")
    assert anon.get("/api/reviews").status_code == 401

    # an objection, answered: dismissed, the notice runs on
    checker = api_client(lab, world.users["checker"])
    r = checker.post(f"/api/notices/{notice_id}/objections", json={"reason": "担心数据被用于营销"})
    assert r.status_code == 200, r.text
    obj = r.json()["id"]
    assert any(i["step"] == "objection" for i in op.get("/api/reviews").json()["items"])
    r = op.post(
        f"/api/objections/{obj}/answer", json={"outcome": "continue", "answer": "用途限于估产，已核实"}
    )
    assert r.status_code == 200 and r.json()["status"] == "dismissed"

    # the notice cannot be concluded early; after the period it can
    assert op.post(f"/api/notices/{notice_id}/conclude").status_code == 409
    with lab.read() as s:
        n = notice_of(s, app_id)
        assert n is not None
        ends = aware(n.ends_at)
    lab.clock = lambda: ends + timedelta(hours=1)
    r = op.post(f"/api/notices/{notice_id}/conclude")
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert status(world, app_id) == "approved"

    # the operator's view and its Excel export
    view = op.get("/api/ops/overview").json()
    counts = {c["stage"]: c["count"] for c in view["stages"]}
    assert counts["approved"] == 1
    assert {t["kind"]: t["decided"] for t in view["stage_times"]}["consent"] == 1
    assert view["most_requested"][0]["title"] == "农作物种植面积"
    assert dev.get("/api/ops/overview").status_code == 403
    for table in ("applications", "stage_times", "overdue", "datasets"):
        x = op.get(f"/api/ops/export?table={table}")
        assert x.status_code == 200, x.text
        wb = load_workbook(io.BytesIO(x.content))
        assert wb.active is not None and wb.active.max_row >= 2
    wb = load_workbook(io.BytesIO(op.get("/api/ops/export?table=applications").content))
    rows = [[c for c in r if c is not None] for r in wb.active.iter_rows(values_only=True)]  # type: ignore[union-attr]
    assert any("申请编号" in r for r in rows) and any("农作物估产模型" in r for r in rows)
    with lab.read() as s:
        from countylab.storage.models import AuditEvent

        assert s.query(AuditEvent).filter(AuditEvent.action == "ops.export").count() == 5


def test_pages_render_for_their_roles(sqlite_world: World) -> None:
    world = sqlite_world
    lab = world.lab
    app_id = submitted(world, datasets=("crops",))
    client = TestClient(create_app(lab))
    csrf = browser_login(client, "operator")
    page = client.get(f"/applications/{app_id}")
    assert page.status_code == 200 and 'id="precheck-form"' in page.text
    r = client.post(
        f"/applications/{app_id}/workflow/decide",
        data={"csrf_token": csrf, "step": "precheck", "decision": "pass", "reason": ""},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert status(world, app_id) == "in_review"
    for path in ("/reviews", "/ops", "/ops/workflow", "/ops/workflow?version=0"):
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.text[:300])
    ops = client.get("/ops").text
    assert 'id="stage-counts"' in ops and 'data-stage="consent"' in ops
    x = client.get("/ops/export.xlsx?table=applications")
    assert x.status_code == 200 and load_workbook(io.BytesIO(x.content)).active is not None

    dept = TestClient(create_app(lab))
    browser_login(dept, "agri")
    assert 'id="decide-consent"' in dept.get(f"/applications/{app_id}").text
    assert str(app_id) in dept.get("/reviews").text


def test_config_edit_validated_versioned_and_kept_by_submitted_applications(sqlite_world: World) -> None:
    world = sqlite_world
    lab = world.lab
    admin = api_client(lab, world.users["admin"])
    op = api_client(lab, world.users["operator"])
    source = admin.get("/api/workflow/config").json()["source"]
    app_before = submitted(world, datasets=("crops",), purpose="public_good")
    bad = source.replace('stages = [["consent"], ["security"]]', 'stages = [["security"]]', 1)
    r = admin.put("/api/workflow/config", json={"source": bad, "note": "去掉部门同意"})
    assert r.status_code == 422 or r.status_code == 400, r.text
    assert "部门同意" in r.json()["error"]["message"]
    assert op.put("/api/workflow/config", json={"source": source}).status_code == 403
    # the county adds 终审 for general 3-4 public-good applications
    changed = source.replace(
        'stages = [["consent"], ["security"]]', 'stages = [["consent"], ["security"], ["final"]]', 1
    )
    assert changed != source
    r = admin.put("/api/workflow/config", json={"source": changed, "note": "公益用途也需终审"})
    assert r.status_code == 200 and r.json()["version"] == 1
    app_after = submitted(world, datasets=("crops",), purpose="public_good", key="after")
    for app_id in (app_before, app_after):
        assert (
            op.post(
                f"/api/applications/{app_id}/decisions", json={"step": "precheck", "decision": "pass"}
            ).status_code
            == 200
        )
    wf_before = op.get(f"/api/applications/{app_before}/workflow").json()
    wf_after = op.get(f"/api/applications/{app_after}/workflow").json()
    assert wf_before["config_version"] == 0 and wf_after["config_version"] == 1
    assert "final" not in [s["kind"] for s in wf_before["rounds"][0]["steps"]]
    assert "final" in [s["kind"] for s in wf_after["rounds"][0]["steps"]]
