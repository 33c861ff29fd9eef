"""Running one attempt of a job: its actions in order, each in its own sandbox run.

This module is the part every executor shares (local threads, Ray tasks): it turns an
:class:`AttemptTicket` into :class:`SandboxSpec` runs through a :class:`SandboxRunner` and
reports an :class:`AttemptOutcome`.  It touches no database, so a Ray node can run it; the
dispatcher records the outcome.

Each action gets a fresh outbox ``<attempt outbox>/<action>/``; the outboxes of the actions it
``needs`` are mounted read-only at ``/data/needs.<action>``.  A job asking for GPUs gets the
devices its executor assigned (``ticket.gpu_devices``) as ``SandboxSpec.gpu_devices``; the
sandbox binds exactly those ``/dev/nvidia*`` nodes.
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from countylab.errors import CountylabError
from countylab.jobs.spec import Action
from countylab.jobs.states import JobState
from countylab.sandbox.spec import RunState, SandboxResult, SandboxSpec


class SandboxRunner(Protocol):
    """Runs one sandbox spec to completion; should return early once ``cancel`` is set."""

    def run(self, spec: SandboxSpec, cancel: threading.Event) -> SandboxResult: ...


@dataclass(frozen=True)
class AttemptTicket:
    """Everything a worker needs to run an attempt; plain data, picklable for Ray."""

    job_id: int
    attempt: int
    project_id: int
    actions: tuple[Action, ...]  # in run order
    code_dir: Path
    outbox_dir: Path
    datasets: dict[str, Path]
    gpu_devices: tuple[str, ...] = ()
    python_prefix: Path | None = None

    @property
    def cpu(self) -> float:
        return max(a.resources.cpu for a in self.actions)

    @property
    def gpus(self) -> int:
        return max(a.resources.gpu for a in self.actions)

    @property
    def memory_mb(self) -> int:
        return max(a.resources.memory_mb for a in self.actions)


@dataclass(frozen=True)
class ActionResult:
    name: str
    state: str  # succeeded | failed | killed | cancelled | skipped
    exit_code: int | None = None
    run_state: str = ""  # the sandbox's RunState
    cpu_s: float = 0.0
    wall_s: float = 0.0
    max_rss_mb: float = 0.0
    gpu_s: float = 0.0
    missing_outputs: tuple[str, ...] = ()
    error: str = ""
    #: the sandbox's security record (host uid/gid, launch mode, seccomp denial, quota hit)
    security: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "missing_outputs": list(self.missing_outputs)}


@dataclass(frozen=True)
class AttemptOutcome:
    job_id: int
    attempt: int
    state: JobState  # succeeded | failed | killed | cancelled
    actions: tuple[ActionResult, ...] = field(default_factory=tuple)
    error: str = ""

    @property
    def cpu_s(self) -> float:
        return sum(a.cpu_s for a in self.actions)

    @property
    def wall_s(self) -> float:
        return sum(a.wall_s for a in self.actions)

    @property
    def max_rss_mb(self) -> float:
        return max((a.max_rss_mb for a in self.actions), default=0.0)

    @property
    def gpu_s(self) -> float:
        return sum(a.gpu_s for a in self.actions)

    @property
    def exit_code(self) -> int | None:
        codes = [a.exit_code for a in self.actions if a.exit_code is not None]
        return codes[-1] if codes else None

    @property
    def security(self) -> dict[str, Any]:
        """The attempt's security record for the audit log: who its actions ran as on the host,
        and whether any was killed by the seccomp filter or stopped by a quota."""
        ran = [a.security for a in self.actions if a.security]
        if not ran:
            return {}
        return {
            "mode": ran[0].get("mode"),
            "host_uids": sorted({r.get("host_uid") for r in ran if r.get("host_uid") is not None}),
            "seccomp_denied": any(bool(r.get("seccomp_denied")) for r in ran),
            "limit": next((r["limit"] for r in ran if r.get("limit")), None),
        }


_KILLED = {RunState.KILLED_TIMEOUT, RunState.KILLED_CPU, RunState.KILLED_MEMORY, RunState.SECCOMP_DENIED}


def sandbox_spec(ticket: AttemptTicket, action: Action) -> SandboxSpec:
    r = action.resources
    datasets = {name: ticket.datasets[name] for name in action.datasets}
    datasets.update({f"needs.{need}": ticket.outbox_dir / need for need in action.needs})
    return SandboxSpec(
        command=list(action.argv),
        code_dir=ticket.code_dir,
        outbox_dir=ticket.outbox_dir / action.name,
        datasets=datasets,
        cpu_seconds=max(1, math.ceil(r.cpu * r.time_s)),
        memory_mb=r.memory_mb,
        wall_seconds=float(r.time_s),
        cpu_cores=r.cpu,
        threads=max(1, int(r.cpu)),
        gpu_devices=list(ticket.gpu_devices[: r.gpu]) if r.gpu else [],
        python_prefix=ticket.python_prefix,
    )


def missing_outputs(outbox: Path, action: Action) -> tuple[str, ...]:
    """Declared outputs the action did not write as regular files (links do not count)."""
    missing = []
    for out in action.outputs:
        try:
            mode = os.lstat(outbox / out.path).st_mode
        except OSError:
            missing.append(out.path)
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            missing.append(out.path)
    return tuple(missing)


def _run_action(
    ticket: AttemptTicket, action: Action, runner: SandboxRunner, cancel: threading.Event
) -> ActionResult:
    spec = sandbox_spec(ticket, action)
    try:
        res = runner.run(spec, cancel)
    except CountylabError as exc:
        return ActionResult(action.name, JobState.failed.value, error=exc.message_en)
    except OSError as exc:
        return ActionResult(action.name, JobState.failed.value, error=f"{type(exc).__name__}: {exc}")
    usage: dict[str, Any] = {
        "exit_code": res.exit_code,
        "run_state": res.state.value,
        "cpu_s": res.cpu_s,
        "wall_s": res.wall_s,
        "max_rss_mb": res.max_rss_mb,
        "gpu_s": res.wall_s * len(spec.gpu_devices),
        "security": dict(res.security),
    }
    if cancel.is_set():
        return ActionResult(action.name, JobState.cancelled.value, **usage)
    if res.state in _KILLED:
        return ActionResult(action.name, JobState.killed.value, error=res.state.value, **usage)
    if res.state is RunState.OUTBOX_QUOTA:  # the limit is named; sizes and counts are not
        return ActionResult(action.name, JobState.failed.value, error=f"{res.limit} quota exceeded", **usage)
    if res.state is not RunState.SUCCEEDED or res.exit_code != 0:
        return ActionResult(action.name, JobState.failed.value, error=f"exit code {res.exit_code}", **usage)
    missing = missing_outputs(spec.outbox_dir, action)
    if missing:
        return ActionResult(
            action.name,
            JobState.failed.value,
            missing_outputs=missing,
            error="missing outputs: " + ", ".join(missing),
            **usage,
        )
    return ActionResult(action.name, JobState.succeeded.value, **usage)


def run_attempt(ticket: AttemptTicket, runner: SandboxRunner, cancel: threading.Event) -> AttemptOutcome:
    """Run the ticket's actions in order; stop at the first that does not succeed."""
    results: list[ActionResult] = []
    final = JobState.succeeded
    error = ""
    for action in ticket.actions:
        if final is not JobState.succeeded:
            results.append(ActionResult(action.name, "skipped"))
            continue
        if cancel.is_set():
            results.append(ActionResult(action.name, JobState.cancelled.value))
            final = JobState.cancelled
            continue
        result = _run_action(ticket, action, runner, cancel)
        results.append(result)
        if result.state != JobState.succeeded.value:
            final = JobState(result.state)
            error = f"{action.name}: {result.error}" if result.error else ""
    return AttemptOutcome(ticket.job_id, ticket.attempt, final, tuple(results), error)


class SandboxedRunner:
    """The production runner: :func:`countylab.sandbox.run_sandboxed`; a cancel kills the running
    action's whole process tree at once (and no further action starts).

    ``sandbox_user``, ``outbox_mb``, ``outbox_files``: the lab's settings of the same names
    (None: the sandbox's defaults), applied to every action it runs.
    """

    def __init__(
        self,
        *,
        sandbox_user: str | None = None,
        outbox_mb: int | None = None,
        outbox_files: int | None = None,
    ) -> None:
        given = {"sandbox_user": sandbox_user, "outbox_mb": outbox_mb, "outbox_files": outbox_files}
        self.overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}

    def run(self, spec: SandboxSpec, cancel: threading.Event) -> SandboxResult:
        from countylab.sandbox import run_sandboxed

        return run_sandboxed(dataclasses.replace(spec, **self.overrides), cancel=cancel)


class UnsandboxedRunner:
    """Laptop fallback for dummy data only (:func:`countylab.sandbox.run_unsandboxed`)."""

    def run(self, spec: SandboxSpec, cancel: threading.Event) -> SandboxResult:
        from countylab.sandbox import run_unsandboxed

        return run_unsandboxed(spec, cancel=cancel)
