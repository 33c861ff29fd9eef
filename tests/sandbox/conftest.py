from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from countylab.sandbox import SandboxResult, SandboxSpec, run_sandboxed

Runner = Callable[..., SandboxResult]


@pytest.fixture
def run_job(tmp_path: Path) -> Runner:
    """Run a Python snippet in the sandbox with tiny limits; returns the result."""
    counter = iter(range(1000))

    def run(
        code: str, *, datasets: dict[str, Path] | None = None, cancel: Any = None, **limits: Any
    ) -> SandboxResult:
        n = next(counter)
        code_dir = tmp_path / f"code{n}"
        code_dir.mkdir()
        (code_dir / "job.py").write_text(textwrap.dedent(code))
        args = dict(cpu_seconds=10, memory_mb=256, wall_seconds=15, pids=64, tmpfs_mb=16)
        args.update(limits)
        spec = SandboxSpec(
            command=["python", "job.py"],
            code_dir=code_dir,
            outbox_dir=tmp_path / f"outbox{n}",
            datasets=datasets or {},
            **args,
        )
        return run_sandboxed(spec, cancel=cancel)

    return run
