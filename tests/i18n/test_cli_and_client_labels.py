"""The CLI and the SDK name codes like the web pages do: Chinese by default, English on request.

The SDK cannot import the lab, so it carries its own table; this test pins it to the lab's words.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from countylab import labels
from countylab.commands import display
from countylab_client import labels as client_labels


@pytest.mark.parametrize("kind", sorted(client_labels.KINDS))
def test_client_table_matches_the_lab(kind: str) -> None:
    lab_kind = labels.kinds()[kind]
    assert set(client_labels.KINDS[kind]) == set(lab_kind.codes)
    for code, (zh, en) in client_labels.KINDS[kind].items():
        assert (zh, en) == (labels.label(kind, code, "zh-CN"), labels.label(kind, code, "en")), (kind, code)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "zh-CN"),
        ({"LANG": "C.UTF-8"}, "zh-CN"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "zh_CN.UTF-8"}, "zh-CN"),
        ({"LANG": "en_US.UTF-8", "COUNTYLAB_LANG": "zh-CN"}, "zh-CN"),
        ({"LANG": "zh_CN.UTF-8", "COUNTYLAB_LANG": "en"}, "en"),
    ],
)
def test_language_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for var in ("COUNTYLAB_LANG", "LC_ALL", "LANG"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert display.lang() == expected == client_labels.lang()


def test_cli_and_client_names_and_times(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("COUNTYLAB_LANG", "LC_ALL", "LANG"):
        monkeypatch.delenv(var, raising=False)
    assert display.grade("general_2") == "一般数据2级" == client_labels.name("grade", "general_2")
    assert display.name("release_state", "under_review") == "审核中"
    assert client_labels.name("job_state", "running") == "运行中"
    moment = datetime(2026, 12, 5, 4, 14, tzinfo=UTC)
    assert display.when(moment) == "2026-12-05 12:14" == client_labels.beijing(moment)
    assert client_labels.beijing("2026-12-05T20:00:00Z") == "2026-12-06 04:00"
    monkeypatch.setenv("COUNTYLAB_LANG", "en")
    assert display.grade("general_2") == "General, level 2" == client_labels.name("grade", "general_2")
    assert client_labels.name("grade", "not-a-grade") == "not-a-grade"
