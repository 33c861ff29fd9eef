"""The workflow through the CLI (``countylab review …``) and the SDK against a live server
(SQLite): the operator pre-checks, the department consents, the steward sets terms, an
objection is filed and answered, the operator exports the view."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from countylab.cli import app
from countylab.notify.messages import aware
from countylab.operations.publicity import notice_of
from countylab_client import Client, ConflictError, PermissionDeniedError, ValidationError
from tests.browser import live_server
from tests.operations.conftest import World
from tests.operations.workflow_helpers import status, submitted
from tests.support import token_for


def test_cli_review_commands(sqlite_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = sqlite_world
    app_id = submitted(w, datasets=("crops",), channels=("dp_query", "sandbox_job"))
    monkeypatch.setenv("COUNTYLAB_LANG", "zh-CN")
    runner = CliRunner()
    with live_server(w.lab) as base:

        def who(name: str) -> list[str]:
            return ["--url", base, "--token", token_for(w.lab, w.users[name])]

        listed = runner.invoke(app, ["review", "list", *who("operator")], terminal_width=200)
        assert listed.exit_code == 0 and "材料预审" in listed.output, listed.output
        bad = runner.invoke(app, ["review", "decide", str(app_id), "precheck", "return", *who("operator")])
        assert bad.exit_code != 0 and "理由" in str(bad.exception), bad.output
        ok = runner.invoke(app, ["review", "decide", str(app_id), "precheck", "pass", *who("operator")])
        assert ok.exit_code == 0 and "in_review" in ok.output, ok.output
        wrong = runner.invoke(app, ["review", "decide", str(app_id), "consent", "approve", *who("econ")])
        assert wrong.exit_code != 0, wrong.output
        ok = runner.invoke(app, ["review", "decide", str(app_id), "consent", "approve", *who("agri")])
        assert ok.exit_code == 0, ok.output
        ds = w.datasets["crops"]
        ok = runner.invoke(
            app,
            ["review", "decide", str(app_id), "security", "approve", "--channel", "sandbox_job",
             "--columns", f"{ds}:town,crop", "--quota", "max_cpu=1", "--conditions", "仅汇总",
             *who("steward")],
        )  # fmt: skip
        assert ok.exit_code == 0 and "publicising" in ok.output, ok.output
        shown = runner.invoke(app, ["review", "show", str(app_id), *who("operator")], terminal_width=200)
        assert shown.exit_code == 0 and "安全审查" in shown.output and "公示" in shown.output, shown.output
        notices = runner.invoke(app, ["review", "notices", "--json", *who("checker")])
        assert notices.exit_code == 0 and "农作物估产模型" in notices.output
        with w.lab.read() as s:
            notice = notice_of(s, app_id)
            assert notice is not None
            nid = notice.id
        obj = runner.invoke(
            app, ["review", "object", str(nid), "--reason", "用途可能超出场景", *who("checker")]
        )
        assert obj.exit_code == 0 and "#" in obj.output, obj.output
        oid = int(obj.output.split("#")[1].split()[0])
        ans = runner.invoke(
            app, ["review", "answer", str(oid), "continue", "--answer", "已核实", *who("operator")]
        )
        assert ans.exit_code == 0 and "dismissed" in ans.output, ans.output
        early = runner.invoke(app, ["review", "conclude", str(nid), *who("operator")])
        assert early.exit_code != 0
        ends = aware(notice.ends_at)
        w.lab.clock = lambda: ends + timedelta(minutes=5)
        done = runner.invoke(app, ["review", "conclude", str(nid), *who("operator")])
        assert done.exit_code == 0 and "approved" in done.output, done.output
    assert status(w, app_id) == "approved"


def test_sdk_review_methods(sqlite_world: World) -> None:
    w = sqlite_world
    app_id = submitted(w, datasets=("elderly",), scenario_by="civil", channels=("dp_query",))
    with live_server(w.lab) as base:
        op = Client(base, token_for(w.lab, w.users["operator"]))
        civil = Client(base, token_for(w.lab, w.users["civil"]))
        steward = Client(base, token_for(w.lab, w.users["steward"]))
        expert = Client(base, token_for(w.lab, w.users["expert"]))
        leader = Client(base, token_for(w.lab, w.users["leader"]))
        admin = Client(base, token_for(w.lab, w.users["admin"]))
        assert [r["step"] for r in op.reviews()] == ["precheck"]
        assert op.decide(app_id, "precheck", "pass")["status"] == "in_review"
        with pytest.raises(ConflictError):
            op.decide(app_id, "precheck", "pass")
        with pytest.raises(PermissionDeniedError):
            steward.decide(app_id, "consent", "approve")
        civil.decide(app_id, "consent", "approve", "同意")
        ds = w.datasets["elderly"]
        with pytest.raises(ValidationError):
            steward.decide(
                app_id, "security", "approve", budgets={ds: (5.0, None)}
            )  # over the 重要 limit 1.0
        steward.decide(app_id, "security", "approve", budgets={ds: (0.5, 1e-9)}, conditions="仅分乡镇")
        # 重要数据: expert review; one assigned expert is not enough for the default config (2 of 3)
        assert op.assign_experts(app_id, [w.users["expert"]]) == [w.users["expert"]]
        assert [r["step"] for r in expert.reviews()] == ["expert"]
        expert.decide(app_id, "expert", "agree", "方法可行")
        wf = op.application_workflow(app_id)
        assert [s["status"] for s in wf["rounds"][0]["steps"] if s["kind"] == "expert"] == ["open"]
        assert leader.reviews() == []
        cfg = admin.workflow_config()
        assert cfg["current"] == 0 and "[[paths]]" in cfg["source"]
        new = cfg["source"].replace("assign = 3\nagree = 2", "assign = 1\nagree = 1")
        assert admin.set_workflow_config(new, note="专家一人即可") == 1
        assert op.workflow_config()["current"] == 1
        overview = op.ops_overview()
        assert {c["stage"]: c["count"] for c in overview["stages"]}["expert"] == 1
        xlsx = op.ops_export("applications")
        sheet = load_workbook(io.BytesIO(xlsx)).active
        assert sheet is not None and sheet.max_row >= 3
        assert op.notices() == []
