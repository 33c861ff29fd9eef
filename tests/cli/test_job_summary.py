"""What `countylab job submit --wait` / `job status` print for each outcome, in both languages.

Pins: the outcome names the state and, when the lab stopped the job, the limit (never twice
for cancelled or lost jobs); CPU is "≤ bucket" for project members and exact for oversight
roles; the next step fits the outcome (release, debug on dummy data, or look at the page).
"""

from __future__ import annotations

from typing import Any

import pytest

from countylab.commands import jobs as cmd
from countylab.i18n import catalog
from countylab_client import Job


def job(**over: Any) -> Job:
    base: dict[str, Any] = {
        "id": 7,
        "project_id": 1,
        "name": "elder-care: train.py",
        "state": "succeeded",
        "attempts": 1,
        "cpu_s": 60,
        "cpu_coarse": True,
        "duration_s": 120.0,
        "outputs": [{"action": "train", "path": "m.csv", "kind": "table", "selector": "train/m.csv"}],
        "message": None,
    }
    return Job.from_json(base | over)


def summary(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, j: Job, lang: str) -> str:
    monkeypatch.setenv("LANG", lang)
    monkeypatch.delenv("COUNTYLAB_LANG", raising=False)
    cmd.print_summary(j)
    return capsys.readouterr().out


def test_success_in_chinese(capsys, monkeypatch) -> None:
    text = summary(capsys, monkeypatch, job(), "zh_CN.UTF-8")
    assert "作业 7 · elder-care: train.py" in text and "状态: 已成功" in text
    assert "CPU: ≤ 60 s" in text and "用时: 约 2 分钟" in text
    assert "train/m.csv  (表格)" in text and "countylab release create --job 7" in text


def test_failure_names_the_limit_and_points_to_dummy_data(capsys, monkeypatch) -> None:
    failed = job(
        state="failed",
        stopped_by="exited_with_error",
        message={"zh": "作业以错误退出。", "en": "the job exited with an error."},
    )
    text = summary(capsys, monkeypatch, failed, "en_US.UTF-8")
    en = catalog("en")
    assert f"State: {en['jobs.state.failed']} ({en['jobs.stop.exited_with_error']})" in text
    assert "the job exited with an error." in text and "countylab run" in text
    zh = summary(capsys, monkeypatch, failed, "zh_CN.UTF-8")
    assert "状态: 已失败（程序报错退出）" in zh


def test_cancelled_says_it_once_and_exact_cpu_for_oversight(capsys, monkeypatch) -> None:
    cancelled = job(state="cancelled", stopped_by="cancelled", cpu_s=12.34, cpu_coarse=False, duration_s=3.2)
    text = summary(capsys, monkeypatch, cancelled, "zh_CN.UTF-8")
    assert "状态: 已取消\n" in text and "CPU: 12.3 s" in text and "用时: 3.2 s" in text
    assert "countylab job status 7" in text
    running = job(state="running", duration_s=None, cpu_s=0)
    text = summary(capsys, monkeypatch, running, "zh_CN.UTF-8")
    assert "用时: —" in text and "CPU: 0 s" in text
