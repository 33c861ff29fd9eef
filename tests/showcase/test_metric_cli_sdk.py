"""Showcase metrics from a script: the Python client's ``metrics``/``metric``/``create_metric``/
``update_metric``/``refresh_metric`` and ``countylab dashboard metric list|show|add|edit|refresh``
(the real ``countylab`` executable, in its own process) against a live server.

What the dashboards page offers, a script can do, with the same checks: a save the DP gateway
refuses (an unknown column, an identifier column) prints the gateway's message as one ``error:``
line, exits 1 and leaves nothing behind (no metric, grant, ledger entry, query run or audit event).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from countylab.lab import Lab
from countylab.storage.dashboard_models import ShowcaseMetric
from countylab.storage.models import AuditEvent, Grant
from countylab.storage.privacy_models import BudgetEntry
from countylab_client import Client, NotFoundError, PermissionDeniedError, ValidationError
from tests.browser import live_server
from tests.showcase.dashboard_fixtures import *  # noqa: F403 - the fixtures dash_template and dash_lab
from tests.showcase.dashboard_fixtures import principal, query_runs
from tests.support import token_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXE = ROOT / ".venv" / "bin" / "countylab"
if not EXE.exists():
    EXE = Path(sys.executable).with_name("countylab")

GOOD_SQL = "SELECT town_code, COUNT(*) AS n FROM residents WHERE age >= 60 GROUP BY town_code"
UNKNOWN_COLUMN = "SELECT COUNT(*) AS n FROM households WHERE nosuch_col > 1"
IDENTIFIER = "SELECT name, COUNT(*) AS n FROM residents GROUP BY name"


def _token(lab: Lab, username: str) -> str:
    uid = principal(lab, username).user_id
    assert uid is not None
    return token_for(lab, uid, days=1)


def _trace(lab: Lab) -> dict[str, Any]:
    """Everything a save could leave behind: metrics, grants, ledger entries, query runs, audit."""
    with lab.read() as s:
        return {
            "metrics": s.execute(select(ShowcaseMetric.name).order_by(ShowcaseMetric.id)).all(),
            "grants": s.execute(select(Grant.project_id, Grant.dataset_id).order_by(Grant.id)).all(),
            "budget": s.execute(select(BudgetEntry.id).order_by(BudgetEntry.id)).all(),
            "runs": query_runs(lab),
            "audit": s.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
        }


def _audit_actions(lab: Lab, prefix: str) -> list[str]:
    with lab.read() as s:
        return list(
            s.execute(
                select(AuditEvent.action).where(AuditEvent.action.like(prefix + "%")).order_by(AuditEvent.id)
            ).scalars()
        )


class Cli:
    """``countylab …`` as a separate process, against one lab URL with one token."""

    def __init__(self, url: str, token: str, home: Path) -> None:
        self.env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "COUNTYLAB_URL": url,
            "COUNTYLAB_TOKEN": token,
            "COUNTYLAB_LANG": "zh-CN",
        }

    def __call__(self, *args: str, lang: str = "zh-CN") -> subprocess.CompletedProcess[str]:
        env = {**self.env, "COUNTYLAB_LANG": lang}
        return subprocess.run(
            [str(EXE), *args], capture_output=True, text=True, timeout=120, check=False, env=env
        )


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_client_lists_shows_creates_edits_and_refreshes_a_metric(dash_lab: Lab) -> None:
    steward = _token(dash_lab, "steward")
    with live_server(dash_lab) as url, Client(url, steward) as c:
        names = [m["name"] for m in c.metrics()]
        assert "alone_by_town" in names and names == [m["name"] for m in c.showcase_metrics()]

        m = c.create_metric("older_by_town", title="各镇60岁以上人数", sql=GOOD_SQL, epsilon=0.5)
        assert (m["name"], m["title"], m["epsilon"], m["schedule"]) == (
            "older_by_town",
            "各镇60岁以上人数",
            0.5,
            "daily",
        )
        assert m["result"] is None and not m["stale"]
        got = c.metric(m["id"])
        assert got["sql"] == GOOD_SQL and got["name"] == "older_by_town"

        edited = c.update_metric(m["id"], title="60岁以上人数（分镇）", epsilon=0.8, schedule="weekly")
        assert (edited["title"], edited["epsilon"], edited["schedule"]) == (
            "60岁以上人数（分镇）",
            0.8,
            "weekly",
        )
        assert c.metric(m["id"])["schedule"] == "weekly"

        refreshed = c.refresh_metric(m["id"])
        assert not refreshed["stale"] and refreshed["refreshed_at"]
        assert refreshed["result"]["columns"] == ["town_code", "n"]
        assert set(refreshed["result"]["intervals"]) == {"n"}
        assert refreshed["epsilon_spent"] == pytest.approx(0.8)
        assert refreshed["next_due_at"]  # weekly: due again a week after this refresh

        with pytest.raises(NotFoundError) as missing:
            c.metric(987654)
        assert "987654" in missing.value.message

    assert _audit_actions(dash_lab, "showcase.metric.")[-3:] == [
        "showcase.metric.create",
        "showcase.metric.update",
        "showcase.metric.refresh",
    ]


def test_client_refusals_name_the_problem_and_leave_nothing(dash_lab: Lab) -> None:
    steward = _token(dash_lab, "steward")
    developer = _token(dash_lab, "developer")
    with live_server(dash_lab) as url:
        before = _trace(dash_lab)
        with Client(url, steward, lang="en") as c:
            with pytest.raises(ValidationError) as unknown:
                c.create_metric("bad_column", title="坏指标", sql=UNKNOWN_COLUMN, epsilon=0.5)
            assert "nosuch_col" in unknown.value.message and unknown.value.details["field"] == "sql"
            with pytest.raises(ValidationError) as ident:
                c.create_metric("bad_ident", title="坏指标", sql=IDENTIFIER, epsilon=0.5)
            assert ident.value.message.endswith("cannot GROUP BY an identifier or the privacy unit: name")
            with pytest.raises(ValidationError) as schedule:
                c.create_metric("bad_schedule", title="坏周期", sql=GOOD_SQL, epsilon=0.5, schedule="monthly")
            assert "monthly" in schedule.value.message
            metric_id = next(m["id"] for m in c.metrics() if m["name"] == "alone_by_town")
            with pytest.raises(ValidationError) as cap:  # a new ε is checked as a refresh would be
                c.update_metric(metric_id, title="独居老人", epsilon=9.5, schedule="daily")
            assert "at most 2 per query" in cap.value.message
        assert _trace(dash_lab) == before
        with Client(url, developer) as dev, pytest.raises(PermissionDeniedError):
            dev.create_metric("not_mine", title="无权", sql=GOOD_SQL, epsilon=0.5)
        after = _trace(dash_lab)  # the refusal itself is on record, nothing else
        assert {**after, "audit": before["audit"]} == before and after["audit"] == before["audit"] + 1
        assert _audit_actions(dash_lab, "permission.")[-1:] == ["permission.denied"]


def test_cli_metric_commands_in_a_separate_process(dash_lab: Lab, tmp_path: Path) -> None:
    steward = _token(dash_lab, "steward")
    sql_file = tmp_path / "older.sql"
    sql_file.write_text(GOOD_SQL + "\n", encoding="utf-8")
    with live_server(dash_lab) as url:
        cli = Cli(url, steward, tmp_path)

        added = cli("dashboard", "metric", "add", "older_by_town", "--file", str(sql_file),
                    "--title", "各镇60岁以上人数", "--epsilon", "0.5", "--schedule", "manual")  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert "已创建指标 created" in added.stdout and "older_by_town" in added.stdout
        assert added.stderr == ""

        listed = cli("dashboard", "metric", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        items = {m["name"]: m for m in json.loads(listed.stdout)}
        m = items["older_by_town"]
        assert (m["sql"], m["epsilon"], m["schedule"]) == (GOOD_SQL, 0.5, "manual")
        text = cli("dashboard", "metric", "list")
        assert text.returncode == 0 and "older_by_town" in text.stdout and "手动 manual" in text.stdout

        shown = cli("dashboard", "metric", "show", str(m["id"]))
        assert shown.returncode == 0, shown.stderr
        assert "各镇60岁以上人数" in shown.stdout and GOOD_SQL in shown.stdout and "ε 0.5" in shown.stdout

        edited = cli(
            "dashboard", "metric", "edit", str(m["id"]), "--title", "60岁以上人数", "--schedule", "weekly"
        )
        assert edited.returncode == 0, edited.stderr
        assert "已保存 saved" in edited.stdout
        with Client(url, steward) as c:
            now = c.metric(m["id"])
        assert (now["title"], now["epsilon"], now["schedule"]) == ("60岁以上人数", 0.5, "weekly")  # ε kept

        refreshed = cli("dashboard", "metric", "refresh", str(m["id"]))
        assert refreshed.returncode == 0, refreshed.stderr
        assert "refreshed 已刷新" in refreshed.stdout
        shown = cli("dashboard", "metric", "show", str(m["id"]), "--json")
        result = json.loads(shown.stdout)["result"]
        assert result["columns"] == ["town_code", "n"] and result["rows"]
        table = cli("dashboard", "metric", "show", str(m["id"]))
        assert "town_code" in table.stdout and " [" in table.stdout  # each DP value with its interval

        # refusals: the gateway's own words, one line, exit 1, nothing saved
        before = _trace(dash_lab)
        bad = cli(
            "dashboard", "metric", "add", "bad_column", UNKNOWN_COLUMN, "--title", "坏", "--epsilon", "0.5"
        )
        assert bad.returncode == 1 and bad.stdout == ""
        assert _one_error_line(bad.stderr) == "error: 列不存在或有歧义：nosuch_col"
        bad = cli("dashboard", "metric", "add", "bad_ident", IDENTIFIER, "--title", "坏", "--epsilon", "0.5",
                  lang="en")  # fmt: skip
        assert bad.returncode == 1
        assert _one_error_line(bad.stderr).endswith("cannot GROUP BY an identifier or the privacy unit: name")
        missing = cli("dashboard", "metric", "show", "987654")
        assert missing.returncode == 1 and "987654" in _one_error_line(missing.stderr)
        assert _trace(dash_lab) == before


def test_cli_help_and_wrong_arguments(dash_lab: Lab, tmp_path: Path) -> None:
    with live_server(dash_lab) as url:
        cli = Cli(url, _token(dash_lab, "steward"), tmp_path)
        group = cli("dashboard", "metric", "--help")
        assert group.returncode == 0
        for word in ("list", "show", "add", "edit", "refresh", "成果展示指标"):
            assert word in group.stdout, word
        helps = {
            "list": ["--json"],
            "show": ["{metric_id}", "--json"],
            "add": ["{name} [sql]", "--file", "--title", "--epsilon", "hourly|daily|weekly|manual"],
            "edit": ["{metric_id}", "--title", "--epsilon", "--schedule"],
            "refresh": ["{metric_id}", "showcase budget"],
        }
        for command, words in helps.items():
            done = cli("dashboard", "metric", command, "--help")
            assert done.returncode == 0, done.stderr
            assert f"Usage: countylab dashboard metric {command}" in done.stdout
            for word in words:
                assert word in done.stdout, (command, word)

        before = _trace(dash_lab)
        sql = tmp_path / "q.sql"
        wrong = {
            ("add", "x_metric", GOOD_SQL, "--title", "t", "--epsilon", "1", "--schedule", "yearly"): "yearly",
            ("add", "x_metric", GOOD_SQL, "--file", str(sql), "--title", "t", "--epsilon", "1"): "--file",
            ("add", "x_metric", "--title", "t", "--epsilon", "1"): "SQL",
            ("add", "x_metric", GOOD_SQL, "--title", "t"): "--epsilon",
            ("add", "x_metric", GOOD_SQL, "--title", "t", "--epsilon", "lots"): "--epsilon",
            ("edit", "1"): "--title, --epsilon or --schedule",
            ("show", "first"): "metric_id",
        }  # fmt: skip
        for args, needle in wrong.items():
            done = cli("dashboard", "metric", *args)
            assert done.returncode == 2, (args, done.stdout, done.stderr)
            line = _one_error_line(done.stderr)
            assert needle in line and f"countylab dashboard metric {args[0]} --help" in line, line
        # a value the lab refuses (not the command line): exit 1, in the language asked for
        zero = cli("dashboard", "metric", "add", "x_metric", GOOD_SQL, "--title", "t", "--epsilon", "0")
        assert zero.returncode == 1 and _one_error_line(zero.stderr) == "error: ε 必须大于 0、不超过 10"
        assert _trace(dash_lab) == before
