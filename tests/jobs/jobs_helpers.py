"""Helpers shared by the job tests: a fake sandbox runner, a lab with projects, job folders."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from countylab.identity.access import Principal
from countylab.identity.projects import create_project
from countylab.identity.roles import Role
from countylab.jobs import Dispatcher, JobService, LocalExecutor, Quota
from countylab.lab import Lab
from countylab.sandbox import RunState, SandboxResult, SandboxSpec
from countylab.storage.jobs_models import Job

SPEC = """\
version: 1
actions:
  main:
    run: python job.py
    outputs:
      - {path: out.txt, kind: text}
    resources: {cpu: 1, memory_mb: 256, time_s: 60}
"""


@dataclass
class FakeRunner:
    """Stands in for the sandbox: records each run, writes ``out.txt``, can sleep or block."""

    sleep_s: float = 0.0
    block: threading.Event | None = None  # runs wait until set (or cancelled)
    exit_code: int = 0
    state: RunState = RunState.SUCCEEDED
    write_outputs: bool = True
    cpu_s: float = 0.25
    runs: Counter[str] = field(default_factory=Counter)
    started: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, spec: SandboxSpec, cancel: threading.Event) -> SandboxResult:
        with self.lock:
            self.runs[str(spec.outbox_dir.parent.parent)] += 1  # …/<job id>/attempt-N/<action>
        self.started.set()
        spec.outbox_dir.mkdir(parents=True)
        t0 = time.monotonic()
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.block is not None:
            while not self.block.is_set() and not cancel.is_set():
                time.sleep(0.005)
        if self.write_outputs:
            (spec.outbox_dir / "out.txt").write_text("ok")
        logs = spec.outbox_dir / "logs"
        logs.mkdir()
        for name in ("stdout.txt", "stderr.txt"):
            (logs / name).write_text("")
        code = 137 if cancel.is_set() else self.exit_code
        return SandboxResult(
            exit_code=code,
            state=self.state,
            wall_s=time.monotonic() - t0,
            cpu_s=self.cpu_s,
            max_rss_mb=42.0,
            stdout_path=logs / "stdout.txt",
            stderr_path=logs / "stderr.txt",
            protections={},
        )


def developer(lab: Lab, username: str, slug: str) -> tuple[Principal, int]:
    """A developer and their new project (as its owner)."""
    from tests.support import create_user

    uid = create_user(lab, username, ["developer"])
    who = Principal(user_id=uid, username=username, roles=frozenset({Role.developer}))
    with lab.tx() as s:
        pid = create_project(s, who, slug=slug, title=slug).id
    return Principal(
        uid,
        username,
        frozenset({Role.developer}),
        project_ids=frozenset({pid}),
        owned_project_ids=frozenset({pid}),
    ), pid


def code_folder(tmp: Path, name: str = "code", spec: str = SPEC) -> Path:
    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.py").write_text("print('hi')\n")
    (folder / "countylab.yaml").write_text(spec)
    return folder


def no_datasets(session: Session, project_id: int) -> dict[str, Path]:
    return {}


def service(lab: Lab, tmp: Path, **kw: Any) -> JobService:
    return JobService(code_root=tmp / "codestore", datasets=kw.pop("datasets", no_datasets), **kw)


def dispatcher(lab: Lab, tmp: Path, runner: FakeRunner, *, workers: int = 2, **kw: Any) -> Dispatcher:
    return Dispatcher(
        lab.sessions,
        LocalExecutor(runner, workers=workers),
        datasets=no_datasets,
        outbox_root=tmp / "outbox",
        poll_interval_s=0.01,
        **kw,
    )


def submit_many(
    lab: Lab, svc: JobService, who: Principal, pid: int, folder: Path, n: int, **kw: Any
) -> list[int]:
    ids = []
    with lab.tx() as s:
        for _ in range(n):
            ids.append(svc.submit(s, who, pid, folder, **kw).id)
    return ids


def states(lab: Lab, ids: list[int]) -> list[str]:
    with lab.tx() as s:
        return [s.get(Job, i).state for i in ids]  # type: ignore[union-attr]


def wait_until(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


@contextmanager
def running(d: Dispatcher) -> Iterator[Dispatcher]:
    d.start()
    try:
        yield d
    finally:
        d.stop()


BIG = Quota(cpu_seconds=None, concurrent_jobs=1000)
