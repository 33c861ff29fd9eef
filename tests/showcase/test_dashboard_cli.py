"""``countylab dashboard …`` and the Python client's dashboard methods, against a live server:
compose, submit (the refusal names the number), approve, refresh a metric, read the public JSON."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from countylab.cli import main
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.storage.models import User
from countylab_client import Client
from tests.browser import live_server
from tests.showcase.dashboard_fixtures import *  # noqa: F403 - the fixtures dash_template and dash_lab
from tests.showcase.dashboard_fixtures import dataset_id, open_bar

pytestmark = pytest.mark.slow


def _token(lab: Lab, username: str) -> str:
    with lab.tx() as s:
        uid = s.execute(select(User.id).where(User.username == username)).scalar_one()
        return ids.create_token(s, SYSTEM, user_id=uid, name="cli", days=1).token


def test_cli_and_client_compose_publish_and_refresh(dash_lab: Lab, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("COUNTYLAB_LANG", "zh-CN")
    operator, steward = _token(dash_lab, "operator"), _token(dash_lab, "steward")
    with live_server(dash_lab) as url:
        with Client(url, operator) as c:
            d = c.create_dashboard("cli-board", "命令行看板")
            spec = open_bar(dash_lab)
            c.add_widget(d["id"], kind="bar", title=spec["title"], source_kind="open", source=spec["source"])
            metric = next(m for m in c.showcase_metrics() if m["name"] == "alone_by_town")
            c.add_widget(
                d["id"], kind="card", title="独居", source_kind="dp", source={"metric_id": metric["id"]}
            )
        assert main(["dashboard", "list", "--url", url, "--token", operator]) == 0
        out = capsys.readouterr().out
        assert "cli-board" in out and "草稿" in out and "elderly-care" in out
        assert main(["dashboard", "publish", str(d["id"]), "--url", url, "--token", operator]) == 0
        assert "submitted" in capsys.readouterr().out
        assert main(["dashboard", "approve", str(d["id"]), "--url", url, "--token", steward]) == 0
        assert "published" in capsys.readouterr().out
        assert main(["dashboard", "show", str(d["id"]), "--url", url, "--token", steward]) == 0
        out = capsys.readouterr().out
        assert "已发布" in out and "差分隐私" in out and "开放数据" in out
        assert main(["dashboard", "refresh", str(metric["id"]), "--url", url, "--token", steward]) == 0
        assert "refreshed" in capsys.readouterr().out
        assert main(["dashboard", "metrics", "--url", url, "--token", steward]) == 0
        assert "alone_by_town" not in capsys.readouterr().err
        with Client(url, operator) as c:
            public = c.public_dashboard("cli-board")
            assert [w["kind"] for w in public["widgets"]] == ["bar", "card"]
            # a dataset that is no longer open: the refusal names the number
            c.create_dashboard("cli-bad", "坏看板")
            bad = next(x for x in c.dashboards() if x["slug"] == "cli-bad")
            c.add_widget(bad["id"], kind="bar", title="PM", source_kind="open", source=spec["source"])
        with dash_lab.tx() as s:
            from countylab.storage.models import Dataset

            s.get(Dataset, dataset_id(dash_lab, "air_quality")).grade = "general_2"  # type: ignore[union-attr]
        code = main(["dashboard", "publish", str(bad["id"]), "--url", url, "--token", operator])
        err = capsys.readouterr().err
        assert code != 0 and "PM" in err and " · " in err, err
