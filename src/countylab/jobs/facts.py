"""What a developer may learn about a job before review: a fixed set of facts chosen by the lab.

A job's code is hostile (docs/explanation/security-model.md).  Anything the job controls —
file names and sizes in its outbox, log text, exit codes, CPU seconds and memory peaks at fine
granularity — is a channel it can write rows into, so none of it reaches the developer before a
checker has looked.  What the developer sees instead is a short, fixed vocabulary:

* the job's **state** (queued, running, succeeded, failed…);
* **which lab limit stopped it** (:class:`StopReason`), from the lab's own classification of
  the sandbox result (the watchdog, the memory cgroup, the pids limit, the outbox quota, a
  seccomp denial…), never from anything the job printed;
* the **lab's own message** for that reason, in Chinese and English (:data:`MESSAGES`);
* metering in **coarse buckets** only (:func:`coarse_seconds`).

A job that simply exits non-zero is ``exited_with_error``: the code itself is not shown (a job
could exit with 256 different codes, one byte per run).  Oversight roles outside the project
(stewards, checkers, admins) see the full attempt records; see ``docs/how-to/jobs.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from countylab.jobs.states import JobState


class StopReason(StrEnum):
    """Why a job did not succeed, as the lab classified it.  Nothing else is ever shown."""

    memory = "memory"  # the memory cgroup's OOM killer
    time = "time"  # the wall-clock watchdog
    cpu_time = "cpu_time"  # RLIMIT_CPU / the cgroup CPU budget
    pids = "pids"  # the process-count limit
    outbox_quota = "outbox_quota"  # outbox bytes or file count over the job's quota
    disk_quota = "disk_quota"  # /tmp or /dev size, file size limit
    seccomp = "seccomp"  # a system call outside the allow-list
    exited_with_error = "exited_with_error"  # the code exited non-zero (the code is an output)
    missing_output = "missing_output"  # a declared output was not written
    no_sandbox = "no_sandbox"  # the server has no working sandbox: nothing ran
    refused = "refused"  # refused at dispatch: quota spent or a grant revoked
    cancelled = "cancelled"  # a person cancelled it
    lost = "lost"  # the lab lost its worker (restart, crash)


MESSAGES: dict[StopReason, tuple[str, str]] = {
    StopReason.memory: ("作业超出内存限制被终止", "the job was stopped: it exceeded its memory limit"),
    StopReason.time: ("作业超出运行时间限制被终止", "the job was stopped: it exceeded its time limit"),
    StopReason.cpu_time: (
        "作业超出 CPU 时间限制被终止",
        "the job was stopped: it exceeded its CPU time limit",
    ),
    StopReason.pids: ("作业超出进程数限制", "the job exceeded its process limit"),
    StopReason.outbox_quota: (
        "作业的输出超出输出区配额（字节数或文件数）",
        "the job's outputs exceeded the outbox quota (bytes or files)",
    ),
    StopReason.disk_quota: (
        "作业超出临时空间或文件大小限制",
        "the job exceeded its scratch space or file size limit",
    ),
    StopReason.seccomp: (
        "作业调用了沙箱不允许的系统调用，已记录",
        "the job made a system call the sandbox does not allow; it was recorded",
    ),
    StopReason.exited_with_error: (
        "作业以错误退出。日志和退出码是输出，出域前不显示；请用 countylab run 在模拟数据上调试",
        "the job exited with an error. Logs and exit codes are outputs and are not shown before "
        "release; debug with countylab run on dummy data",
    ),
    StopReason.missing_output: (
        "作业没有写出 countylab.yaml 中声明的全部输出",
        "the job did not write every output declared in countylab.yaml",
    ),
    StopReason.no_sandbox: (
        "服务器没有可用的沙箱，作业未运行；请联系平台管理员",
        "the server has no working sandbox and the job did not run; contact the platform admin",
    ),
    StopReason.refused: (
        "作业在调度时被拒绝：算力配额已用尽或数据授权已撤销",
        "the job was refused at dispatch: the compute quota is spent or a grant was revoked",
    ),
    StopReason.cancelled: ("作业已被取消", "the job was cancelled"),
    StopReason.lost: ("实验室丢失了运行作业的进程，已重新排队或终止", "the lab lost the job's worker"),
}

_RUN_STATES: dict[str, StopReason] = {
    "killed_memory": StopReason.memory,
    "killed_timeout": StopReason.time,
    "killed_cpu": StopReason.cpu_time,
}


def _from_marker(text: str) -> StopReason | None:
    """A lab-written marker (a run state or an error reason), matched by keyword so that new
    sandbox states (``killed_pids``, ``outbox_quota``…) are classified without a change here."""
    low = text.lower()
    if low in _RUN_STATES:
        return _RUN_STATES[low]
    for key, reason in (
        ("seccomp", StopReason.seccomp),
        ("pids", StopReason.pids),
        ("outbox", StopReason.outbox_quota),
        ("no_sandbox", StopReason.no_sandbox),
        ("bubblewrap", StopReason.no_sandbox),
        ("memory", StopReason.memory),
        ("timeout", StopReason.time),
        ("tmpfs", StopReason.disk_quota),
        ("disk", StopReason.disk_quota),
        ("fsize", StopReason.disk_quota),
    ):
        if key in low:
            return reason
    return None


def stop_reason(state: str, actions: Iterable[Mapping[str, Any]], error: str = "") -> StopReason | None:
    """The lab's classification of why the job in ``state`` stopped (None: it did not stop early).

    ``actions``: the latest attempt's action results (:class:`countylab.jobs.attempt.ActionResult`
    dicts); ``error``: the job's error as the lab wrote it.  Only lab-written fields are read.
    """
    st = JobState(state)
    if st in (JobState.pending, JobState.queued, JobState.running, JobState.succeeded):
        return None
    if st is JobState.cancelled:
        return StopReason.cancelled
    if st is JobState.lost:
        return StopReason.lost
    acts = list(actions)
    for act in acts:
        if act.get("state") in ("succeeded", "skipped"):
            continue
        for marker in (str(act.get("run_state") or ""), _error_marker(str(act.get("error") or ""))):
            found = _from_marker(marker) if marker else None
            if found is not None:
                return found
        if act.get("missing_outputs"):
            return StopReason.missing_output
        if act.get("exit_code") not in (None, 0) or act.get("run_state") == "failed":
            return StopReason.exited_with_error
    marker = _error_marker(error)
    found = _from_marker(marker) if marker else None
    if found is not None:
        return found
    if st is JobState.killed:
        return StopReason.time
    if not acts:
        return StopReason.lost if error.startswith("lost ") else StopReason.refused
    return StopReason.exited_with_error


def _error_marker(error: str) -> str:
    """Lab-written error texts are ``<action>: <reason>``; the reason is matched against fixed
    keywords only, and an exit code or missing output names never are."""
    reason = error.split(": ", 1)[-1].strip()
    if reason.startswith(("exit code", "missing outputs")):
        return ""
    return reason[:200]


def message(reason: StopReason | None) -> dict[str, str] | None:
    if reason is None:
        return None
    zh, en = MESSAGES[reason]
    return {"zh": zh, "en": en}


BUCKETS_S = (60, 600, 3600, 4 * 3600, 24 * 3600)


def coarse_seconds(seconds: float) -> int:
    """``seconds`` rounded **up** to a coarse bucket: a minute, ten minutes, an hour, four hours,
    a day, then whole days.  A job can spend CPU time on purpose to encode digits; a bucket
    carries at most a few bits, whatever the job did."""
    if seconds <= 0:
        return 0
    for bucket in BUCKETS_S:
        if seconds <= bucket:
            return bucket
    return int(math.ceil(seconds / 86400) * 86400)


def minute(ts: Any) -> str | None:
    """A timestamp to the minute (a job's own timing is an output at finer grain)."""
    if ts is None:
        return None
    return str(ts.replace(second=0, microsecond=0).isoformat())


def listing(job: Any, actions: Iterable[Mapping[str, Any]], *, full: bool) -> dict[str, Any]:
    """What a jobs list shows beside the name and state: CPU seconds actually used (the latest
    attempt's cgroup accounting), how long it ran, and the outputs its spec declares.

    For a project member the CPU seconds are a coarse bucket (:func:`coarse_seconds`) and the
    duration is whole minutes between the minute-rounded timestamps the member already sees;
    oversight roles (``full``) get both exactly.  Declared outputs are the developer's own words
    (path and kind from ``countylab.yaml``), not what the job wrote.
    """
    acts = list(actions)
    used = sum(float(a.get("cpu_s") or 0) for a in acts)
    started, finished = getattr(job, "started_at", None), getattr(job, "finished_at", None)
    duration: float | None = None
    if started is not None and finished is not None:
        if full:
            duration = round(max(0.0, (finished - started).total_seconds()), 1)
        else:
            first, last = (ts.replace(second=0, microsecond=0) for ts in (started, finished))
            duration = max(0.0, (last - first).total_seconds())
    return {
        "cpu_s": round(used, 1) if full else coarse_seconds(used),
        "cpu_coarse": not full,
        "duration_s": duration,
        "outputs": declared_outputs(getattr(job, "spec", None) or {}),
    }


def declared_outputs(spec: Mapping[str, Any]) -> list[dict[str, str]]:
    """``[{"action", "path", "kind", "selector"}]`` in spec order; ``selector`` (``action/path``)
    is how a release request names the file."""
    found: list[dict[str, str]] = []
    for action, body in dict(spec.get("actions") or {}).items():
        for out in (body or {}).get("outputs") or []:
            path = str(out.get("path", "")).strip("/")
            if path:
                found.append(
                    {"action": str(action), "path": path, "kind": str(out.get("kind", "")),
                     "selector": f"{action}/{path}"}
                )  # fmt: skip
    return found
