"""Put the launcher into the job's cgroup and under its rlimits before the job's code runs.

bubblewrap is started with ``--block-fd``: it builds the namespaces and the filesystem, then its
sandbox child waits for one byte before loading seccomp and starting the command.  Meanwhile the
parent moves both bwrap processes (the outer monitor, and the child whose host pid bwrap reports
on ``--json-status-fd``) into the cgroup and sets their rlimits with ``prlimit(2)``.  Everything
the job later forks inherits both.

Why not a ``preexec_fn``: it runs Python in a forked child (unsafe once the lab runs threads,
and it forces a slow ``fork`` instead of ``vfork``), and it serialises the kernel's cgroup
migration — which waits for an RCU grace period, 5–15 ms — before bwrap can even start.  Here
that wait overlaps bwrap's own set-up.

If confining fails, the launcher is killed before the block is released: the job never runs
unconfined.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

from countylab.errors import BugError
from countylab.sandbox.cgroups import JobCgroup

_CHILD_PID = re.compile(rb'"child-pid"\s*:\s*(\d+)')


@dataclass
class Handshake:
    """Two pipes shared with bwrap: the block (we write) and the status (bwrap writes)."""

    block_r: int
    block_w: int
    status_r: int
    status_w: int

    @classmethod
    def open(cls) -> Handshake:
        block_r, block_w = os.pipe()
        status_r, status_w = os.pipe()
        return cls(block_r, block_w, status_r, status_w)

    def child_fds(self) -> list[int]:
        return [self.block_r, self.status_w]

    def _close(self, name: str) -> None:
        fd = getattr(self, name)
        if fd >= 0:  # closed exactly once: a second close could hit a reused descriptor
            setattr(self, name, -1)
            os.close(fd)

    def spawned(self) -> None:
        """Close the child's ends in the parent once bwrap has them."""
        self._close("block_r")
        self._close("status_w")

    def close(self) -> None:
        """Close everything (after the run: bwrap writes its exit status into the status pipe)."""
        for name in ("block_r", "status_w", "block_w", "status_r"):
            self._close(name)


def _confine(pid: int, cgroup: JobCgroup | None, limits: list[tuple[int, int, int]]) -> None:
    if cgroup is not None:
        cgroup.add(pid)
    for res, soft, hard in limits:
        resource.prlimit(pid, res, (soft, hard))


def _read_child_pid(fd: int, timeout_s: float) -> int | None:
    """The sandbox child's host pid from bwrap's JSON status; None if bwrap exited first."""
    data = b""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while (match := _CHILD_PID.search(data)) is None or b"}" not in data[match.end() :]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BugError("沙箱启动超时", "bubblewrap did not report its child in time")
            if not sel.select(remaining):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            data += chunk
    return int(match.group(1))


def release(
    handshake: Handshake,
    proc: subprocess.Popen[bytes],
    cgroup: JobCgroup | None,
    limits: list[tuple[int, int, int]],
    timeout_s: float,
) -> None:
    """Confine both bwrap processes, then let the job start."""
    try:
        _confine(proc.pid, cgroup, limits)
        child = _read_child_pid(handshake.status_r, timeout_s)
        if child is not None:
            _confine(child, cgroup, limits)
            os.write(handshake.block_w, b"1")
    except ProcessLookupError:
        pass  # bwrap failed during set-up and took its child with it; its stderr says why
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if cgroup is not None:
            cgroup.kill_all()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)  # reap the launcher: no zombie is left behind
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        raise
    finally:
        handshake._close("block_w")
