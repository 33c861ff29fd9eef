"""The parent side of a run: log capture, the watchdog, and the logs written into the outbox.

The parent never trusts the job to stop: a wall-clock deadline and (where a cgroup counts CPU
time across all of the job's processes) a CPU budget are checked while the output pipes are
read.  Killing takes the whole tree: the process group of the bwrap launcher (whose death takes
the job's pid namespace with it, thanks to ``--die-with-parent``) and every member of the cgroup.

Logs are kept in memory up to a cap and written into ``outbox/logs`` only after the job has
ended, through directory file descriptors with ``O_NOFOLLOW``: the job can write to the outbox
too and might have planted a symlink at ``logs/stdout.txt`` pointing at a host file.
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from countylab.errors import Conflict
from countylab.sandbox.cgroups import CgroupUsage, JobCgroup
from countylab.sandbox.spec import RunState, SandboxSpec

CPU_POLL_S = 0.1
CANCEL_POLL_S = 0.2  # how quickly a cancelled job dies
EXIT_GRACE_S = 0.5  # after the launcher exits, how long stray holders of the pipes get to finish


def rlimits_for(spec: SandboxSpec) -> list[tuple[int, int, int]]:
    fsize = (spec.file_size_mb if spec.file_size_mb is not None else spec.tmpfs_mb) * 1024 * 1024
    limits = [
        (resource.RLIMIT_CPU, spec.cpu_seconds, spec.cpu_seconds + 1),
        (resource.RLIMIT_FSIZE, fsize, fsize),
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_NOFILE, spec.open_files, spec.open_files),
    ]
    if not spec.gpu_devices:
        as_mb = spec.address_space_mb if spec.address_space_mb is not None else 4 * spec.memory_mb + 1024
        limits.append((resource.RLIMIT_AS, as_mb * 1024 * 1024, as_mb * 1024 * 1024))
    return limits


def make_preexec(limits: list[tuple[int, int, int]]) -> Callable[[], None]:
    """rlimits set in the forked child before exec (unsandboxed fallback only).

    The sandboxed path sets them with ``prlimit`` from the parent instead (see ``confine``).
    """

    def preexec() -> None:
        for res, soft, hard in limits:
            resource.setrlimit(res, (soft, hard))

    return preexec


@dataclass
class _Capture:
    limit: int
    data: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def feed(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[: max(room, 0)]
        self.data += chunk

    def final(self) -> bytes:
        marker = (
            f"\n[countylab: output truncated at {self.limit} bytes]\n".encode() if self.truncated else b""
        )
        return bytes(self.data) + marker


@dataclass
class Outcome:
    exit_code: int
    killed: RunState | None
    wall_s: float
    rusage_cpu_s: float
    rusage_maxrss_mb: float
    usage: CgroupUsage | None
    stdout: _Capture
    stderr: _Capture


def _kill_tree(proc: subprocess.Popen[bytes], cgroup: JobCgroup | None) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if cgroup is not None:
        cgroup.kill_all()


def supervise(
    proc: subprocess.Popen[bytes],
    spec: SandboxSpec,
    cgroup: JobCgroup | None,
    started: float,
    cancel: threading.Event | None = None,
) -> Outcome:
    """Read output, enforce the wall clock and CPU budget, reap, and kill whatever is left.

    ``cancel``: when the caller sets it, the whole tree is killed within ``CANCEL_POLL_S``.
    """
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Capture(spec.log_limit_bytes), _Capture(spec.log_limit_bytes)
    captures = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    pidfd = os.pidfd_open(proc.pid)
    sel = selectors.DefaultSelector()
    for fd in captures:
        sel.register(fd, selectors.EVENT_READ)
    sel.register(pidfd, selectors.EVENT_READ)
    deadline = started + spec.wall_seconds
    count_cpu = cgroup is not None and "cpu" in cgroup.controllers
    killed: RunState | None = None
    exited_at: float | None = None
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                killed = RunState.KILLED_TIMEOUT
                break
            if cancel is not None and cancel.is_set() and exited_at is None:
                killed = RunState.CANCELLED
                break
            if exited_at is not None and (len(sel.get_map()) == 0 or now - exited_at > EXIT_GRACE_S):
                break
            timeout = deadline - now
            if count_cpu:
                timeout = min(timeout, CPU_POLL_S)
            if cancel is not None:
                timeout = min(timeout, CANCEL_POLL_S)
            if exited_at is not None:
                timeout = min(timeout, EXIT_GRACE_S)
            for key, _ in sel.select(timeout):
                if key.fd == pidfd:
                    exited_at = time.monotonic()
                    sel.unregister(pidfd)
                    continue
                chunk = os.read(key.fd, 65536)
                if chunk:
                    captures[key.fd].feed(chunk)
                else:
                    sel.unregister(key.fd)
            if count_cpu and cgroup is not None and exited_at is None:
                cpu = cgroup.usage().cpu_seconds
                if cpu is not None and cpu > spec.cpu_seconds:
                    killed = RunState.KILLED_CPU
                    break
        # Kill before reaping: the launcher, even as a zombie, keeps its pid and process group
        # from being reused, so this never hits a stranger.  Whatever the job left running
        # (background children in unsandboxed mode) goes too.
        _kill_tree(proc, cgroup)
        _, status, rusage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        for key in list(sel.get_map().values()):
            if key.fd in captures:
                _drain(key.fd, captures[key.fd])
    finally:
        sel.close()
        os.close(pidfd)
        proc.stdout.close()
        proc.stderr.close()
    code = proc.returncode
    return Outcome(
        exit_code=128 - code if code < 0 else code,
        killed=killed,
        wall_s=wall,
        rusage_cpu_s=rusage.ru_utime + rusage.ru_stime,
        rusage_maxrss_mb=rusage.ru_maxrss / 1024,
        usage=cgroup.usage() if cgroup is not None else None,
        stdout=out,
        stderr=err,
    )


def _drain(fd: int, capture: _Capture) -> None:
    os.set_blocking(fd, False)
    with contextlib.suppress(BlockingIOError, OSError):
        while chunk := os.read(fd, 65536):
            capture.feed(chunk)


def classify(outcome: Outcome, spec: SandboxSpec, cpu_s: float) -> RunState:
    if outcome.killed is not None:
        return outcome.killed
    if outcome.usage is not None and outcome.usage.oom_kills > 0:
        return RunState.KILLED_MEMORY
    if outcome.exit_code == 128 + signal.SIGSYS:  # the seccomp filter's kill (SECCOMP_RET_KILL_PROCESS)
        return RunState.SECCOMP_DENIED
    if outcome.exit_code == 128 + signal.SIGXCPU or (
        outcome.exit_code == 128 + signal.SIGKILL and cpu_s >= spec.cpu_seconds
    ):
        return RunState.KILLED_CPU
    return RunState.SUCCEEDED if outcome.exit_code == 0 else RunState.FAILED


def prepare_outbox(outbox: Path) -> None:
    """A fresh outbox per run: absent (created here) or empty."""
    if outbox.is_symlink() or (outbox.exists() and any(outbox.iterdir())):
        raise Conflict("输出区必须是新的空目录", "the outbox must be a fresh, empty folder", path=str(outbox))
    outbox.mkdir(parents=True, exist_ok=True)
    outbox.chmod(0o700)


def write_logs(outbox: Path, stdout: bytes, stderr: bytes) -> tuple[Path, Path]:
    """Write ``logs/stdout.txt`` and ``logs/stderr.txt`` without following anything the job planted."""
    root_fd = os.open(outbox, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        _replace_with_dir(root_fd, "logs", outbox / "logs")
        logs_fd = os.open("logs", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=root_fd)
        try:
            for name, data in (("stdout.txt", stdout), ("stderr.txt", stderr)):
                _remove_entry(logs_fd, name, outbox / "logs" / name)
                fd = os.open(
                    name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=logs_fd
                )
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
        finally:
            os.close(logs_fd)
    finally:
        os.close(root_fd)
    return outbox / "logs" / "stdout.txt", outbox / "logs" / "stderr.txt"


def _remove_entry(dir_fd: int, name: str, path: Path) -> None:
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # fd-based on Linux: does not follow symlinks inside
    else:
        os.unlink(name, dir_fd=dir_fd)


def _replace_with_dir(dir_fd: int, name: str, path: Path) -> None:
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        st = None
    if st is None:
        os.mkdir(name, 0o755, dir_fd=dir_fd)
