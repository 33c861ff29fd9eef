"""``countylab query`` / ``countylab budget`` and the Python client, against a live uvicorn server."""

from __future__ import annotations

import pytest

from countylab.cli import main
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab_client import Client
from tests.browser import live_server
from tests.privacy_gateway.conftest import ELDERLY_SQL, project_id, user_id

pytestmark = pytest.mark.slow


def test_cli_prints_intervals_and_budgets_and_the_client_agrees(demo_lab, capsys, monkeypatch):
    monkeypatch.setenv("COUNTYLAB_LANG", "zh-CN")  # state names in Chinese, whatever the host's LANG
    dev_id, steward_id = user_id(demo_lab, "developer"), user_id(demo_lab, "steward")
    with demo_lab.tx() as s:
        dev = ids.create_token(s, SYSTEM, user_id=dev_id, name="cli", days=1).token
        steward = ids.create_token(s, SYSTEM, user_id=steward_id, name="cli", days=1).token
    pid = str(project_id(demo_lab))
    with live_server(demo_lab) as url:
        code = main(
            ["query", ELDERLY_SQL, "--project", pid, "--epsilon", "0.5", "--url", url, "--token", dev]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        assert "330729001" in out and "[" in out and "ε spent" in out and "1.5" in out
        code = main(
            [
                "query",
                "SELECT * FROM residents",
                "--project",
                pid,
                "--epsilon",
                "0.5",
                "--url",
                url,
                "--token",
                dev,
            ]
        )
        err = capsys.readouterr().err
        assert code != 0 and "SELECT *" in err
        code = main(["budget", "show", "--project", pid, "--url", url, "--token", dev])
        out = capsys.readouterr().out
        assert code == 0 and "residents" in out and "1.5" in out

        with Client(url, dev) as c:
            df = c.query(ELDERLY_SQL, epsilon=0.5, project_id=int(pid))
            assert df.attrs["cached"] is True and df.attrs["budget_remaining"] == pytest.approx(1.5)
            assert {"count(*)_ci_low", "count(*)_ci_high"} <= set(df.columns)
            assert len(c.query_history(int(pid), mine=True)) == 3
            tables = {t["name"]: t for t in c.query_tables(int(pid))}
            age = next(col for col in tables["residents"]["columns"] if col["name"] == "age")
            assert (age["lower"], age["upper"], age["kind"]) == (0.0, 110.0, "numeric")
        with Client(url, steward) as c:
            ds = tables["residents"]["id"]
            assert c.set_budget(int(pid), ds, epsilon=1.0)["epsilon_limit"] == 1.0
            assert any(b["epsilon_limit"] == 1.0 for b in c.budget(int(pid))["budgets"])
            assert len(c.query_history()) == 3
        # a top-up: the member asks on the command line, the steward decides, the budget grows
        ds_arg = str(tables["residents"]["id"])
        code = main(
            [
                "budget",
                "topup",
                "-p",
                pid,
                "-d",
                ds_arg,
                "--epsilon",
                "0.5",
                "--reason",
                "第二期",
                "--url",
                url,
                "--token",
                dev,
            ]
        )
        out = capsys.readouterr().out
        assert code == 0 and "待审批" in out, out  # state names in the CLI's language (zh by default)
        with Client(url, steward) as c:
            pending = c.topups(status="pending")
            assert [t["reason"] for t in pending] == ["第二期"]
        code = main(
            ["budget", "decide", str(pending[0]["id"]), "--approve", "--url", url, "--token", steward]
        )
        assert code == 0 and "已批准" in capsys.readouterr().out
        code = main(["budget", "decide", str(pending[0]["id"]), "--refuse", "--url", url, "--token", steward])
        assert code != 0  # decided once, never again
        capsys.readouterr()
        with Client(url, dev) as c:
            view = c.budget(int(pid))
            proj = next(b for b in view["budgets"] if b["scope"] == "project" and b["dataset"] == "residents")
            assert proj["epsilon_topup"] == 0.5 and proj["epsilon_limit"] == pytest.approx(1.5)
            assert proj["renews_at"] == view["renews_at"] and view["period"] == "month"
            assert c.topups(int(pid))[0]["status"] == "approved"
        code = main(["budget", "show", "--project", pid, "--url", url, "--token", dev])
        out = capsys.readouterr().out
        assert code == 0 and "renews" in out and "all projects" in out
