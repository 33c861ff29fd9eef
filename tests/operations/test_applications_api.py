"""The applicant's path through the JSON API, the CLI (against a live server) and the SDK, on SQLite
and PostgreSQL; refusals keep their bilingual words and the audited denial."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pypdfium2
import pytest
from typer.testing import CliRunner

from countylab.cli import app
from countylab.operations.applications import COMMITMENTS
from countylab_client import Client, ConflictError, PermissionDeniedError, ValidationError
from tests.browser import live_server
from tests.operations.conftest import World
from tests.support import api_client, audit_actions, token_for


def _pdf() -> bytes:
    doc = pypdfium2.PdfDocument.new()
    doc.new_page(595, 842)
    buf = io.BytesIO()
    doc.save(buf)
    doc.close()
    return buf.getvalue()


def _body(w: World, sid: int) -> dict[str, object]:
    return {
        "scenario_id": sid,
        "title": "养老需求预测",
        "purpose": "public_good",
        "datasets": [{"dataset_id": w.datasets["elderly"], "columns": ["town"]}],
        "channels": ["dp_query"],
        "starts_on": str(w.today + timedelta(days=3)),
        "ends_on": str(w.today + timedelta(days=300)),
        "expected_outputs": "分乡镇预测",
        "commitments": list(COMMITMENTS),
    }


def test_api_round_trip_and_refusals(world: World) -> None:
    sid = world.scenario()
    dev = api_client(world.lab, world.users["dev"])
    made = dev.post("/api/applications", json=_body(world, sid))
    assert made.status_code == 201, made.text
    app_id = made.json()["id"]
    assert made.json()["number"].startswith("SQ-") and made.json()["problems"] == []
    up = dev.post(f"/api/applications/{app_id}/attachments", files={"file": ("方案.pdf", _pdf())})
    assert up.status_code == 201, up.text
    bad = dev.post(f"/api/applications/{app_id}/attachments", files={"file": ("x.pdf", b"hello")})
    assert bad.status_code == 422 and "%PDF-" in bad.json()["error"]["message"]
    got = dev.get(f"/api/applications/{app_id}/attachments/{up.json()['id']}")
    assert got.status_code == 200 and got.content.startswith(b"%PDF-")
    assert ("application.attachment.download", "dev", "ok") in audit_actions(world.lab)  # who read it
    assert dev.post(f"/api/applications/{app_id}/submit").json()["status"] == "submitted"
    again = dev.put(f"/api/applications/{app_id}", json=_body(world, sid))
    assert again.status_code == 409
    # not offered: 422 naming the dataset, in English when asked
    wrong = {**_body(world, sid), "datasets": [{"dataset_id": world.datasets["crops"]}]}
    en = dev.post("/api/applications", json=wrong, headers={"Accept-Language": "en"})
    assert en.status_code == 422 and "does not offer" in en.json()["error"]["message"]
    # another department's provider may not read the application: 403 and an audited denial
    agri = api_client(world.lab, world.users["agri"])
    assert agri.get(f"/api/applications/{app_id}").status_code == 403
    assert ("permission.denied", "agri", "denied") in audit_actions(world.lab)
    assert agri.get(f"/api/applications/{app_id}/attachments/{up.json()['id']}").status_code == 403
    # the operator sees it, the list and the scenario with its offer
    op = api_client(world.lab, world.users["operator"])
    assert [a["number"] for a in op.get("/api/applications").json()["items"]] == [made.json()["number"]]
    accs = op.get("/api/accreditations").json()["items"]
    assert {a["username"]: a["state"] for a in accs}["dev2"] == "expired"


def test_cli_against_a_live_server(
    sqlite_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = sqlite_world
    sid = w.scenario()
    monkeypatch.setenv("COUNTYLAB_LANG", "zh-CN")
    runner = CliRunner()
    pdf = tmp_path / "方案.pdf"
    pdf.write_bytes(_pdf())
    with live_server(w.lab) as base:
        civil = ["--url", base, "--token", token_for(w.lab, w.users["civil"])]
        dev = ["--url", base, "--token", token_for(w.lab, w.users["dev"])]
        listed = runner.invoke(app, ["scenario", "list", *dev], terminal_width=200)
        assert listed.exit_code == 0 and "征集中" in listed.output, listed.output
        pub = runner.invoke(
            app,
            ["scenario", "publish", "--title", "农作物估产", "--problem", "产量不清",
             "--field", "agriculture", "--dataset", f"{w.datasets['elderly']}:town,age", "--json", *civil],
        )  # fmt: skip
        assert pub.exit_code == 0, pub.output
        assert json.loads(pub.output)["datasets"][0]["columns"] == ["town", "age"]
        new = runner.invoke(
            app,
            ["application", "new", "--scenario", str(sid), "--title", "养老预测", "--purpose", "public_good",
             "--dataset", str(w.datasets["elderly"]), "--channel", "sandbox_job",
             "--starts-on", str(w.today + timedelta(days=1)), "--ends-on", str(w.today + timedelta(days=200)),
             "--outputs", "预测表", "--commit-all", "--json", *dev],
        )  # fmt: skip
        assert new.exit_code == 0, new.output
        app_id = json.loads(new.output)["id"]
        att = runner.invoke(app, ["application", "attach", str(app_id), str(pdf), *dev])
        assert att.exit_code == 0 and "sha256" in att.output, att.output
        sub = runner.invoke(app, ["application", "submit", str(app_id), *dev], terminal_width=200)
        assert sub.exit_code == 0 and "已提交" in sub.output, sub.output
        bad = runner.invoke(
            app,
            ["application", "new", "--scenario", str(sid), "--title", "x",
             "--dataset", str(w.datasets["crops"]), *dev],
        )  # fmt: skip
        assert bad.exit_code != 0 and "没有提供数据集“农作物种植面积”" in str(bad.exception)
        shown = runner.invoke(app, ["application", "show", str(app_id), *dev], terminal_width=200)
        assert "SQ-" in shown.output and "承诺书 commitments: 7/7" in shown.output


def test_sdk(sqlite_world: World, tmp_path: Path) -> None:
    w = sqlite_world
    with live_server(w.lab) as base:
        civil = Client(base, token_for(w.lab, w.users["civil"]))
        dev = Client(base, token_for(w.lab, w.users["dev"]))
        operator = Client(base, token_for(w.lab, w.users["operator"]))
        sc = civil.publish_scenario(
            title="交通拥堵治理",
            problem="高峰拥堵",
            field="elderly_care",
            datasets=[w.datasets["elderly"]],
            apply_until=w.today + timedelta(days=30),
        )
        assert sc["status"] == "collecting"
        own = dev.publish_scenario(
            title="自拟", problem="p", field="elderly_care", datasets=[w.datasets["elderly"]], propose=True
        )
        assert own["status"] == "proposed"
        with pytest.raises(PermissionDeniedError):
            dev.accept_scenario(own["id"])
        assert operator.accept_scenario(own["id"], "可以")["status"] == "collecting"
        assert dev.subscribe_scenarios(["agriculture"]) == ["agriculture"]
        a = dev.create_application(scenario_id=sc["id"], title="草稿", datasets=[w.datasets["elderly"]])
        with pytest.raises(ValidationError):
            dev.submit_application(a["id"])  # purpose, channels, term, outputs, commitments missing
        a = dev.update_application(
            a["id"],
            scenario_id=sc["id"],
            title="完整",
            purpose="industry",
            datasets=[w.datasets["elderly"]],
            channels=["model_serving"],
            member_ids=[w.users["dev2"]],
            starts_on=w.today,
            ends_on=w.today + timedelta(days=90),
            expected_outputs="模型",
            commitments=list(COMMITMENTS),
        )
        flagged = {m["username"]: m["accredited"] for m in a["members"]}
        assert flagged == {"dev": True, "dev2": False}
        with pytest.raises(PermissionDeniedError) as err:
            dev.submit_application(a["id"])
        assert "李二" in str(err.value)
        rec = operator.record_accreditation(
            user_id=w.users["dev2"],
            course="数据安全培训",
            passed_on=w.today,
            expires_on=w.today + timedelta(days=365),
        )
        assert rec["state"] == "current"
        assert dev.submit_application(a["id"])["status"] == "submitted"
        with pytest.raises(ConflictError):
            dev.renew_application(a["id"])
        assert dev.withdraw_application(a["id"], "改期")["status"] == "withdrawn"
