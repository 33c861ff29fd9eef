"""Issue 13's "Done when" without a browser, on SQLite and PostgreSQL: the terminal user's path
(``countylab scenario|application|review|agreement …`` as real processes, Chinese locale) and the
Python client's for the rest, against a live server over the small county of these tests.

A leader publishes a scenario offering two departments' datasets, a developer applies, both
departments consent, the security officer keeps DP queries and sets budgets, the leader approves,
the notice runs out, both sides sign the PDF agreement, the authorisation holds exactly the
approved datasets and channels, and when the lab's clock passes the end date it expires."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from countylab.notify.messages import aware
from countylab.operations.publicity import notice_of
from countylab_client import Client
from tests.browser import live_server
from tests.operations.conftest import World
from tests.operations.workflow_helpers import status
from tests.support import PASSWORD, token_for

pytestmark = [pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def _cli(home: Path, url: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COUNTYLAB_", "LC_", "LANG"))}
    env.update(
        HOME=str(home), COUNTYLAB_URL=url, COUNTYLAB_TOKEN=token, LANG="zh_CN.UTF-8", COUNTYLAB_LANG="zh-CN"
    )
    exe = Path(sys.executable).with_name("countylab")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=env, timeout=120, cwd=REPO, check=False
    )


def test_scenario_to_expiry_through_cli_and_client(world: World, tmp_path: Path) -> None:
    w, lab = world, world.lab
    crops, power = w.datasets["crops"], w.datasets["power"]
    today = w.today
    real_clock = lab.clock
    with live_server(lab) as url:

        def run(who: str, *args: str) -> Any:
            done = _cli(tmp_path, url, token_for(lab, w.users[who]), *args)
            assert done.returncode == 0, (args, done.stdout, done.stderr)
            return done.stdout

        def sdk(who: str) -> Client:
            return Client(url, token=token_for(lab, w.users[who]))

        # 1. the leader publishes (terminal), the developer applies and submits (terminal)
        sc = json.loads(
            run(
                "leader", "scenario", "publish", "--title", "企业用电与作物结构联动分析",
                "--problem", "农产品加工企业用电与种植结构脱节。", "--field", "industry",
                "--dataset", str(crops), "--dataset", str(power), "--org", str(w.orgs["经信局"]),
                "--until", str(today + timedelta(days=60)), "--json",
            )
        )  # fmt: skip
        app = json.loads(
            run(
                "dev", "application", "new", "--scenario", str(sc["id"]), "--title", "用电与种植结构联动模型",
                "--purpose", "industry", "--dataset", str(crops), "--dataset", str(power),
                "--channel", "dp_query", "--channel", "sandbox_job", "--starts-on", str(today),
                "--ends-on", str(today + timedelta(days=30)), "--outputs", "分乡镇联动分析报告",
                "--commit-all",
                "--json",
            )
        )  # fmt: skip
        app_id = int(app["id"])
        out = run("dev", "application", "submit", str(app_id))
        assert "SQ-" in out, out

        # 2. pre-check, two departments' consents, the security officer's terms, the leader
        run("operator", "review", "decide", str(app_id), "precheck", "pass")
        run("agri", "review", "decide", str(app_id), "consent", "approve", "--reason", "同意")
        refused = _cli(
            tmp_path,
            url,
            token_for(lab, w.users["civil"]),
            "review",
            "decide",
            str(app_id),
            "consent",
            "approve",
        )
        assert refused.returncode != 0  # not an owning department: refused
        run("econ", "review", "decide", str(app_id), "consent", "approve", "--reason", "同意")
        run(
            "steward", "review", "decide", str(app_id), "security", "approve", "--channel", "dp_query",
            "--budget", f"{crops}:1.0", "--budget", f"{power}:1.0", "--conditions", "仅按乡镇汇总",
        )  # fmt: skip
        assert status(w, app_id) == "in_review"  # the leader's final approval is still due
        out = run("leader", "review", "decide", str(app_id), "final", "approve", "--reason", "同意")
        assert status(w, app_id) == "publicising", out

        # 3. the notice is public (client, anyone logged in), then runs out and is concluded
        notices = sdk("checker").notices()
        assert any(n["title"] == "用电与种植结构联动模型" for n in notices), notices
        with lab.read() as s:
            notice = notice_of(s, app_id)
            assert notice is not None
            ends, notice_id = aware(notice.ends_at), notice.id
        lab.clock = lambda: ends + timedelta(minutes=5)
        try:
            if status(w, app_id) == "publicising":
                run("operator", "review", "conclude", str(notice_id))
            assert status(w, app_id) == "approved"

            # 4. the agreement: drafted (terminal), read and signed by both sides
            out = run("operator", "agreement", "draft", str(app_id))
            dev = sdk("dev")
            agreement_id = int(dev.agreement_of(app_id)["id"])
            assert dev.agreement_of(app_id)["number"] in out, out
            pdf = dev.agreement_pdf(agreement_id)
            assert pdf[:5] == b"%PDF-"
            first = dev.sign_agreement(agreement_id, PASSWORD, sha256=hashlib.sha256(pdf).hexdigest())
            assert not first["complete"]
            second = sdk("operator").sign_agreement(agreement_id, PASSWORD)
            assert second["complete"] and second["authorisation_id"]
            auth = sdk("steward").authorisation(int(second["authorisation_id"]))
            assert auth["status"] == "active", auth
            granted = {int(g["dataset_id"]): g for g in auth["datasets"]}
            assert auth["channels"] == ["dp_query"]  # sandbox jobs were asked for, not approved
            assert set(granted) == {crops, power}  # exactly the approved datasets
            assert all(g["channels"] == ["dp_query"] for g in granted.values())  # and channel
            shown = run("dev", "agreement", "show", str(app_id))
            assert "XY-" in shown, shown

            # 5. the end date passes: the sweep ends the authorisation, the record says so
            lab.clock = lambda: aware(ends) + timedelta(days=40)
            assert lab.expiry.run_once().expired
            assert sdk("steward").authorisation(int(second["authorisation_id"]))["status"] == "expired"
        finally:
            lab.clock = real_clock
