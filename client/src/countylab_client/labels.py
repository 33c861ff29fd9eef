"""Names of the lab's codes for people: grades, job and release states, Beijing time.

The API returns codes (``general_2``, ``running``) and ISO UTC times, which is what programs
compare; a notebook or a report shows people names.  These helpers give the same words as the
lab's web pages (a test in the lab's suite compares the tables), in Chinese by default or in
English when ``COUNTYLAB_LANG`` (or ``LANG``) says so::

    from countylab_client import labels
    labels.name("grade", ds.grade)          # '一般数据2级'
    labels.name("job_state", job.state)     # '运行中'
    labels.beijing(job.created_at)          # '2026-12-05 20:14'
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta, timezone

__all__ = ["KINDS", "beijing", "lang", "name"]

#: kind -> code -> (中文, English)
KINDS: dict[str, dict[str, tuple[str, str]]] = {
    "grade": {
        "core": ("核心数据", "Core data"),
        "important": ("重要数据", "Important data"),
        "general_4": ("一般数据4级", "General, level 4"),
        "general_3": ("一般数据3级", "General, level 3"),
        "general_2": ("一般数据2级", "General, level 2"),
        "general_1": ("一般数据1级", "General, level 1"),
    },
    "job_state": {
        "pending": ("待准入", "pending"),
        "queued": ("排队中", "queued"),
        "running": ("运行中", "running"),
        "succeeded": ("已成功", "succeeded"),
        "failed": ("已失败", "failed"),
        "killed": ("超限终止", "killed"),
        "cancelled": ("已取消", "cancelled"),
        "lost": ("已丢失", "lost"),
    },
    "release_state": {
        "draft": ("草稿", "Draft"),
        "submitted": ("已提交", "Submitted"),
        "under_review": ("审核中", "Under review"),
        "returned": ("已退回", "Returned"),
        "rejected": ("已拒绝", "Rejected"),
        "approved": ("已批准", "Approved"),
        "released": ("已出域", "Released"),
        "withdrawn": ("已撤回", "Withdrawn"),
        "retracted": ("已撤展", "Retracted"),
    },
    "model_state": {
        "pending": ("待审批", "Pending"),
        "approved": ("已批准", "Approved"),
        "rejected": ("已拒绝", "Rejected"),
    },
    "check_status": {
        "pass": ("通过", "passed"),
        "warn": ("需人工查看", "needs a look"),
        "fail": ("未通过", "failed"),
    },
    "topup_status": {
        "pending": ("待审批", "pending"),
        "approved": ("已批准", "approved"),
        "refused": ("已拒绝", "refused"),
    },
    "column_type": {
        "int64": ("整数", "integer"),
        "float64": ("小数", "decimal"),
        "string": ("文本", "text"),
        "bool": ("是/否", "yes/no"),
        "date": ("日期", "date"),
        "timestamp": ("时间", "date and time"),
    },
}

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # no daylight saving since 1991


def lang() -> str:
    """``zh-CN`` unless ``COUNTYLAB_LANG``, ``LC_ALL`` or ``LANG`` asks for English."""
    for var in ("COUNTYLAB_LANG", "LC_ALL", "LANG"):
        value = os.environ.get(var, "").strip().lower()
        if value and value not in ("c", "posix") and not value.startswith("c."):
            return "en" if value.startswith("en") else "zh-CN"
    return "zh-CN"


def name(kind: str, code: object, language: str | None = None) -> str:
    """The name of ``code`` of ``kind`` (``grade``, ``job_state``…); the code itself if unknown."""
    if code is None or code == "":
        return ""
    value = str(getattr(code, "value", code))
    found = KINDS.get(kind, {}).get(value)
    if found is None:
        return value
    return found[1] if (language or lang()) == "en" else found[0]


def beijing(value: datetime | date | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC time (aware, naive = UTC, or ISO text) in Beijing time; a plain date unchanged."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        if len(value) == 10:
            return value
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        return value.isoformat()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(BEIJING).strftime(fmt)
