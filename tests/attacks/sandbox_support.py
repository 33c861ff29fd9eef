"""Helpers of the sandbox attack suite (tests/attacks/test_sandbox_*.py).

Every attack is hostile job code run through the real sandbox: through ``run_sandboxed`` (the
function the lab's job runner and model workers use) where a single run shows the property,
and through the lab's job API in ``test_sandbox_api.py``.  CI runs them as root, the case in
which a user namespace would have made the job host root.  Nothing here skips: without a
working bubblewrap the fixture fails.
"""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from countylab.sandbox import SandboxResult, SandboxSpec, run_sandboxed, sandbox_available
from countylab.sandbox.identity import SandboxIdentity, launch_mode, sandbox_identity

Run = Callable[..., SandboxResult]

#: Prepended to probes: ``attempt(label, fn)`` records "ok" or the exception's name.
PROBE = """
import errno, json, os, subprocess, sys
res = {}
def attempt(label, fn):
    try:
        fn()
        res[label] = "ok"
    except OSError as exc:
        res[label] = errno.errorcode.get(exc.errno, type(exc).__name__)
    except Exception as exc:
        res[label] = type(exc).__name__
def killed_by(code):
    '''Run ``code`` in a child Python; its return code (-31: killed by SIGSYS).'''
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode
"""


@pytest.fixture(scope="session")
def sandbox_ready() -> SandboxIdentity:
    assert sandbox_available(), "the sandbox attacks need bubblewrap, as CI runs them"
    assert launch_mode() == "drop", "CI runs these as root: jobs must drop to the sandbox user"
    return sandbox_identity()


@pytest.fixture
def sandbox_job(tmp_path: Path, sandbox_ready: SandboxIdentity) -> Run:
    """Run a Python snippet as a sandboxed job with small limits; returns the result."""
    counter = iter(range(1000))

    def run(
        code: str, *, datasets: dict[str, Path] | None = None, argv: tuple[str, ...] = (), **limits: Any
    ) -> SandboxResult:
        n = next(counter)
        code_dir = tmp_path / f"code{n}"
        code_dir.mkdir()
        (code_dir / "job.py").write_text(textwrap.dedent(code))
        args: dict[str, Any] = dict(cpu_seconds=20, memory_mb=512, wall_seconds=40, pids=64, tmpfs_mb=32)
        args.update(limits)
        spec = SandboxSpec(
            command=["python", "job.py", *argv],
            code_dir=code_dir,
            outbox_dir=tmp_path / f"outbox{n}",
            datasets=datasets or {},
            **args,
        )
        return run_sandboxed(spec)

    return run


def out(result: SandboxResult) -> str:
    return result.stdout_path.read_text()


def err(result: SandboxResult) -> str:
    return result.stderr_path.read_text()


def probe_json(result: SandboxResult) -> dict[str, Any]:
    """The last line of stdout as JSON (probes end with ``print(json.dumps(res))``)."""
    lines = out(result).strip().splitlines()
    assert lines, (result.state, err(result))
    return dict(json.loads(lines[-1]))


def outbox_of(result: SandboxResult) -> Path:
    return result.stdout_path.parent.parent


def host_status(marker: str) -> list[dict[str, str]]:
    """``/proc/<pid>/status`` fields, read on the host, of every process whose argv has ``marker``."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if marker.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        found.append({k: v.strip() for k, v in fields.items()})
    return found


def while_running(run: Callable[[], SandboxResult], marker: str, wait_s: float = 20) -> Iterator[Any]:
    """Start ``run`` in a thread; yield the host status of the job's processes once they show."""
    box: dict[str, SandboxResult] = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", run()))
    thread.start()
    deadline = time.monotonic() + wait_s
    seen: list[dict[str, str]] = []
    while time.monotonic() < deadline and not seen:
        seen = [s for s in host_status(marker) if s.get("Name") not in ("bwrap",)]
        time.sleep(0.05)
    yield seen
    thread.join(60)
    yield box.get("r")


SERVICE_USER = "countylab-svc-test"
SERVICE_SUBIDS = "310000-310999"


@pytest.fixture(scope="session")
def service_user(sandbox_ready: SandboxIdentity) -> str:
    """An unprivileged service user with a subordinate id range, like the county server's
    ``countylab`` (created here when missing: CI runs as root)."""
    import pwd
    import subprocess

    assert os.access("/usr/bin/newuidmap", os.X_OK), "newuidmap is missing: run scripts/system-deps.sh"
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
             "/usr/sbin/nologin", SERVICE_USER],
            check=True,
        )  # fmt: skip
    if (
        SERVICE_USER not in Path("/etc/subuid").read_text()
        or SERVICE_USER not in Path("/etc/subgid").read_text()
    ):
        subprocess.run(
            ["usermod", "--add-subuids", SERVICE_SUBIDS, "--add-subgids", SERVICE_SUBIDS, SERVICE_USER],
            check=True,
        )
    return SERVICE_USER
