"""What makes a parsed spec acceptable here: datasets, dependencies, paths and quota.

Every refusal names the line and field of ``countylab.yaml`` it is about, so the developer
fixes the spec before anything is queued.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from countylab.errors import ValidationFailed
from countylab.jobs.spec import Action, JobSpec, problem


@dataclass(frozen=True)
class Quota:
    """A project's compute quota (算力配额).

    Per-action ceilings (``max_*``) are checked against each action's ``resources``;
    ``cpu_seconds``/``gpu_seconds`` are the budget per ``period_days`` (None: unlimited), and
    ``concurrent_jobs`` caps how many of the project's jobs run at once (checked at dispatch).
    """

    max_cpu: float = 4.0
    max_memory_mb: int = 8192
    max_time_s: int = 4 * 3600
    max_gpu: int = 0
    cpu_seconds: float | None = 100 * 3600.0
    gpu_seconds: float | None = 0.0
    concurrent_jobs: int = 2
    period_days: int = 30


def _is_escaping(path: str) -> bool:
    if path.startswith(("/", "~", "\\")) or "\\" in path or "\0" in path:
        return True
    norm = posixpath.normpath(path)
    return norm == ".." or norm.startswith("../") or norm == "."


def _looks_like_path(token: str) -> bool:
    return "/" in token or token.startswith(("~", "..")) or token.endswith(".py")


def topological_order(spec: JobSpec) -> list[Action]:
    """Actions ordered so each comes after what it needs (file order breaks ties); refuses cycles."""
    by_name = {a.name: a for a in spec.actions}
    for a in spec.actions:
        for i, need in enumerate(a.needs):
            if need not in by_name:
                raise problem(
                    spec.line_of("actions", a.name, "needs", i),
                    f"actions.{a.name}.needs",
                    "unknown_action",
                    f"依赖的步骤“{need}”不存在",
                    f"needs an action that does not exist: {need}",
                )
    done: list[Action] = []
    placed: set[str] = set()
    while len(done) < len(spec.actions):
        ready = [a for a in spec.actions if a.name not in placed and set(a.needs) <= placed]
        if not ready:
            stuck = [a for a in spec.actions if a.name not in placed]
            cycle = " → ".join(a.name for a in stuck)
            first = stuck[0]
            raise problem(
                spec.line_of("actions", first.name, "needs"),
                f"actions.{first.name}.needs",
                "cycle",
                f"步骤之间存在循环依赖：{cycle}",
                f"the actions depend on each other in a cycle: {cycle}",
            )
        done.append(ready[0])
        placed.add(ready[0].name)
    return done


def validate_spec(
    spec: JobSpec, *, known_datasets: set[str], quota: Quota, folder: Path | None = None
) -> list[Action]:
    """Check ``spec`` against what this project may use; return its actions in run order.

    ``known_datasets``: the names granted to the project.  ``folder``: the stored code folder,
    when given scripts named in ``run`` must exist in it.
    """
    for a in spec.actions:
        _check_action(spec, a, known_datasets, quota, folder)
    order = topological_order(spec)
    for total, budget, fld, zh, en in (
        (spec.cpu_seconds, quota.cpu_seconds, "cpu", "CPU 秒", "CPU-seconds"),
        (spec.gpu_seconds, quota.gpu_seconds, "gpu", "GPU 秒", "GPU-seconds"),
    ):
        if budget is not None and total > budget:
            raise problem(
                spec.line_of("actions"),
                f"resources.{fld}",
                "quota",
                f"全部步骤共需 {total:.0f} {zh}，超过项目配额 {budget:.0f}",
                f"the actions together reserve {total:.0f} {en}, over the project quota of {budget:.0f}",
            )
    return order


def _check_action(spec: JobSpec, a: Action, known: set[str], quota: Quota, folder: Path | None) -> None:
    base = ("actions", a.name)
    for i, ds in enumerate(a.datasets):
        if ds not in known:
            raise problem(
                spec.line_of(*base, "datasets", i),
                f"actions.{a.name}.datasets",
                "unknown_dataset",
                f"项目未获授权或不存在的数据集：{ds}",
                f"dataset not granted to this project or unknown: {ds}",
            )
    seen: set[str] = set()
    for i, out in enumerate(a.outputs):
        where = spec.line_of(*base, "outputs", i, "path")
        if _is_escaping(out.path):
            raise problem(
                where,
                f"actions.{a.name}.outputs",
                "path_escape",
                f"输出路径必须位于输出区之内：{out.path}",
                f"output path must stay inside the outbox: {out.path}",
            )
        norm = posixpath.normpath(out.path)
        if norm == "logs" or norm.startswith("logs/"):
            raise problem(
                where,
                f"actions.{a.name}.outputs",
                "reserved_path",
                "logs/ 由平台写入，不能声明为输出",
                "logs/ is written by the lab and cannot be an output",
            )
        if norm in seen:
            raise problem(
                where,
                f"actions.{a.name}.outputs",
                "duplicate_output",
                f"输出路径重复：{out.path}",
                f"duplicate output path: {out.path}",
            )
        seen.add(norm)
    run_line = spec.line_of(*base, "run")
    for token in a.argv[1:]:
        if _looks_like_path(token) and _is_escaping(token):
            raise problem(
                run_line,
                f"actions.{a.name}.run",
                "path_escape",
                f"命令中的路径必须位于代码目录之内：{token}",
                f"paths in the command must stay inside the code folder: {token}",
            )
        if folder is not None and token.endswith(".py") and not (folder / token).is_file():
            raise problem(
                run_line,
                f"actions.{a.name}.run",
                "missing_file",
                f"代码目录中没有此文件：{token}",
                f"no such file in the code folder: {token}",
            )
    _check_resources(spec, a, quota)


def _check_resources(spec: JobSpec, a: Action, quota: Quota) -> None:
    r = a.resources
    for fld, asked, limit in (
        ("cpu", r.cpu, quota.max_cpu),
        ("memory_mb", r.memory_mb, quota.max_memory_mb),
        ("time_s", r.time_s, quota.max_time_s),
        ("gpu", r.gpu, quota.max_gpu),
    ):
        if asked > limit:
            raise problem(
                spec.line_of("actions", a.name, "resources", fld),
                f"actions.{a.name}.resources.{fld}",
                "quota",
                f"申请 {asked:g} 超过项目配额 {limit:g}",
                f"asks for {asked:g}, over the project quota of {limit:g}",
            )
    if r.cpu <= 0 or r.memory_mb <= 0 or r.time_s <= 0:
        raise problem(
            spec.line_of("actions", a.name, "resources"),
            f"actions.{a.name}.resources",
            "zero",
            "cpu、memory_mb、time_s 必须大于 0",
            "cpu, memory_mb and time_s must be above 0",
        )


__all__ = ["Quota", "ValidationFailed", "topological_order", "validate_spec"]
