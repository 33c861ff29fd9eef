"""``countylab audit list`` and ``export`` against a real server: Chinese names, Beijing time, files.

Pinned: the table names actions and shows Beijing time (Chinese by default, English with
``COUNTYLAB_LANG=en``); ``--json`` keeps codes and UTC; the filters reach the API; ``export``
writes a CSV with a BOM or an XLSX, and the export is audited; a bad date is one bilingual line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from countylab import audit
from countylab.cli import app
from countylab.lab import Lab
from countylab.labels import bjtime
from countylab.storage.models import AuditEvent
from tests.browser import live_server
from tests.support import build_lab, create_user, token_for


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Lab, list[str]]]:
    lab = build_lab(tmp_path)
    steward = create_user(lab, "steward1", ["steward"])
    with lab.tx() as s:
        audit.append(
            s, actor_id=None, actor="system", action="dataset.push", target="dataset:1", details={"rows": 3}
        )
        audit.append(s, actor_id=None, actor="system", action="grant.create", target="project:1")
    try:
        with live_server(lab) as base:
            yield lab, ["--url", base, "--token", token_for(lab, steward)]
    finally:
        lab.close()


def test_list_in_chinese_and_english(live: tuple[Lab, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    lab, args = live
    monkeypatch.delenv("LANG", raising=False)
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.setenv("COUNTYLAB_LANG", "zh-CN")
    runner = CliRunner()
    done = runner.invoke(app, ["audit", "list", "--action", "group:dataset", *args], terminal_width=200)
    assert done.exit_code == 0, done.output
    assert "推送数据" in done.output and "系统" in done.output and "授权使用数据集" not in done.output
    with lab.read() as s:
        ts = s.query(AuditEvent).filter_by(action="dataset.push").one().ts
    assert bjtime(ts, "second") in done.output  # Beijing time
    monkeypatch.setenv("COUNTYLAB_LANG", "en")
    en = runner.invoke(app, ["audit", "list", "--action", "dataset.push", *args], terminal_width=200)
    assert en.exit_code == 0 and "data pushed" in en.output
    raw = runner.invoke(app, ["audit", "list", "--json", "--action", "dataset.push", *args])
    items = json.loads(raw.output)
    assert items[0]["action"] == "dataset.push" and items[0]["ts"].endswith("+00:00")
    bad = runner.invoke(app, ["audit", "list", "--since", "12/5/2026", *args])
    assert bad.exit_code != 0 and "year-month-day" in str(bad.exception)  # one line via main()


def test_export_writes_files_and_is_audited(live: tuple[Lab, list[str]], tmp_path: Path) -> None:
    lab, args = live
    runner = CliRunner()
    csv_path, xlsx_path = tmp_path / "a.csv", tmp_path / "a.xlsx"
    assert (
        runner.invoke(app, ["audit", "export", str(csv_path), "--action", "dataset.push", *args]).exit_code
        == 0
    )
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert "dataset.push" in csv_path.read_bytes().decode("utf-8-sig")
    assert runner.invoke(app, ["audit", "export", str(xlsx_path), *args]).exit_code == 0
    assert xlsx_path.read_bytes()[:2] == b"PK"
    with lab.read() as s:
        exports = s.query(AuditEvent).filter_by(action="audit.export").all()
    assert len(exports) == 2 and all('"via":"api"' in e.details for e in exports)
