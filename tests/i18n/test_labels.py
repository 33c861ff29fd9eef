"""Every code people see has one name per language, times are Beijing time, people have one name.

The completeness checks compare the label tables with the enums themselves and with the audit
actions the source code emits (found by reading the source), so a new state or action without a
Chinese and an English name fails here, not in front of a county clerk.
"""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from countylab import labels
from countylab.i18n import catalog

SRC = Path(__file__).resolve().parents[2] / "src" / "countylab"

# Actions built at run time (f-strings, variables): each family spelled out.
DYNAMIC_ACTIONS = {
    *(f"dataset.grade.{k}" for k in ("proposed", "confirmed", "raised", "lowered")),
    *(f"dataset.version.{s}" for s in ("upload", "push", "pull", "demo", "pipeline")),
    "user.activate",
    "user.deactivate",
    "user.password",
    "user.password_reset",
    "release.preview",
    "release.download",
    "model.approved",
    "model.rejected",
    "budget.topup_approved",
    "budget.topup_refused",
    "audit.export",
    "dataset.push_summary",
}


def _emitted_actions() -> set[str]:
    """String actions passed to ``audit.record``/``append``/``record`` anywhere in the source."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            candidates = [k.value for k in node.keywords if k.arg == "action"]
            if name == "record" and len(node.args) >= 3:
                candidates.append(node.args[2])
            if name in ("record", "move") and len(node.args) >= 3:
                candidates.append(node.args[2])
            for c in candidates:
                if (
                    isinstance(c, ast.Constant)
                    and isinstance(c.value, str)
                    and "." in c.value
                    or (isinstance(c, ast.Constant) and c.value in ("login", "logout"))
                ):
                    found.add(str(c.value))
                elif isinstance(c, ast.IfExp):
                    found.update(str(b.value) for b in (c.body, c.orelse) if isinstance(b, ast.Constant))
    return found


def test_the_source_scan_finds_the_known_actions() -> None:
    found = _emitted_actions()
    assert {"dataset.push", "login", "job.submit", "release.vote", "query.run"} <= found
    assert len(found) > 40


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_emitted_audit_action_has_a_name(lang: str) -> None:
    cat = catalog(lang)
    missing = sorted(a for a in _emitted_actions() | DYNAMIC_ACTIONS if f"audit.act.{a}" not in cat)
    assert not missing, f"audit actions without a {lang} name (add audit.act.<action>): {missing}"
    groups = {labels.action_group(a) for a in _emitted_actions() | DYNAMIC_ACTIONS}
    assert groups <= set(labels.ACTION_GROUPS)
    assert all(f"audit.group.{g}" in cat for g in labels.ACTION_GROUPS)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_enum_member_has_a_name(lang: str) -> None:
    cat = catalog(lang)
    missing = [
        f"{k}:{c}" for k, kind in labels.kinds().items() for c in kind.codes if kind.prefix + c not in cat
    ]
    assert not missing, f"codes without a {lang} name: {missing}"


def test_chinese_names_are_chinese_and_differ_from_codes() -> None:
    for kind_name, kind in labels.kinds().items():
        for code in kind.codes:
            zh = labels.label(kind_name, code, "zh-CN")
            assert zh != code, (kind_name, code)
            assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), (kind_name, code, zh)
    for action in _emitted_actions() | DYNAMIC_ACTIONS:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in labels.action_label(action, "zh-CN")), action


def test_named_examples() -> None:
    assert labels.label("grade", "general_2") == "一般数据2级"
    assert labels.label("grade", "core", "en") != "core"
    assert labels.label("job_state", "running") == "运行中"
    assert labels.label("release_state", "under_review") == "审核中"
    assert labels.label("column_type", "float64") == "小数"
    assert labels.action_label("dataset.push") == "推送数据"
    assert labels.action_label("dataset.push", "en") == "data pushed"
    assert labels.label("job_state", "no-such-state") == "no-such-state"  # unknown: shown, not a crash
    assert labels.label("grade", None) == ""


def test_known_utc_time_shows_eight_hours_later() -> None:
    assert labels.bjtime("2026-12-05T04:14:30+00:00") == "2026-12-05 12:14"
    assert labels.bjtime(datetime(2026, 12, 5, 20, 0, tzinfo=UTC)) == "2026-12-06 04:00"
    assert labels.bjtime(datetime(2026, 12, 5, 20, 0)) == "2026-12-06 04:00"  # naive = stored UTC
    assert labels.bjtime("2026-12-05T04:14:30Z", "second") == "2026-12-05 12:14:30"
    assert labels.bjtime("2026-12-05T04:14:30+00:00", "date") == "2026-12-05"
    assert labels.bjtime(date(2026, 12, 5)) == "2026-12-05"  # a date has no zone to convert
    assert labels.bjtime(None) == "" and labels.bjtime("not a time") == "not a time"


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)))
def test_beijing_is_always_utc_plus_eight(moment: datetime) -> None:
    shown = datetime.strptime(labels.bjtime(moment, "second"), "%Y-%m-%d %H:%M:%S")
    assert shown == (moment + timedelta(hours=8)).replace(tzinfo=None, microsecond=0)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 1, 1)))
def test_beijing_day_bounds_cover_exactly_that_beijing_day(day: date) -> None:
    start, end = labels.beijing_day_bounds(day)
    assert end - start == timedelta(days=1)
    assert labels.bjtime(start, "date") == day.isoformat()
    assert labels.bjtime(end - timedelta(microseconds=1), "date") == day.isoformat()
    assert start.hour == 16  # 00:00 Beijing is 16:00 UTC the day before


def test_one_name_per_person() -> None:
    assert labels.person("张三", "zhangsan") == "张三 (zhangsan)"
    assert labels.person("", "zhangsan") == "zhangsan"
    assert labels.person("zhangsan", "zhangsan") == "zhangsan"
    assert labels.person(None, None) == "—"


def test_details_are_named_and_formatted() -> None:
    pairs = dict(labels.details_pairs({"rows": 12345, "to_grade": "general_3", "cached": True}, "zh-CN"))
    assert pairs == {"行数": "12,345", "新分级": "一般数据3级", "缓存": "是"}
    en = dict(labels.details_pairs({"rows": 3, "to_grade": "general_3"}, "en"))
    assert en["rows"] == "3" and en["to grade"] != "general_3"
    assert labels.detail_value("last_at", "2026-12-05T04:14:30+00:00") == "2026-12-05 12:14"


def test_job_step_errors_are_named() -> None:
    assert labels.job_error("seccomp_denied") == "禁止的系统调用，已终止"
    assert labels.job_error("exit code 3") == "程序退出码 3"
    assert labels.job_error("bytes quota exceeded", "en") == "bytes quota exceeded"
    assert labels.job_error("bytes quota exceeded") == "超出配额：bytes"
    assert labels.job_error("missing outputs: a.csv, b.csv") == "缺少声明的输出：a.csv, b.csv"
    assert labels.job_error("something else") == "something else" and labels.job_error(None) == ""
    assert labels.label("run_state", "skipped") == "未运行（前一步未成功）"


def test_job_workers_are_named_in_the_audit_filter() -> None:
    """A worker id (``worker:vm:2102:76f834fa``) reads as the job worker it is, in both languages."""
    from countylab.labels import system_name

    assert system_name("worker:vm:2102:76f834fa") == "作业执行进程 vm:2102:76f834fa"
    assert system_name("worker:vm:1", "en") == "job worker vm:1"
    assert system_name("liu") is None  # a person keeps their own name


def test_every_cell_rule_of_the_airlock_checks_has_words() -> None:
    """A flagged cell's hover text names its rule: every rule the checks write has zh and en words."""
    import re
    from pathlib import Path

    from countylab.i18n import catalog
    from countylab.privacy import sdc

    checks = Path(__file__).resolve().parents[2] / "src" / "countylab" / "airlock" / "checks"
    text = "".join(p.read_text(encoding="utf-8") for p in checks.glob("*.py"))
    rules = set(re.findall(r'"rule":\s*"(\w+)"', text)) | {sdc.THRESHOLD, sdc.P_PERCENT, sdc.DOMINANCE}
    assert {"threshold", "recoverable", "degrees_of_freedom"} <= rules
    for lang in ("zh-CN", "en"):
        missing = sorted(r for r in rules if f"airlock.rule.{r}" not in catalog(lang))
        assert not missing, (lang, missing)
