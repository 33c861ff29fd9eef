"""The seccomp filter every sandboxed job runs under: an allow-list, compiled with libseccomp.

Namespaces already hide the network and the host's processes; the filter is the second wall
that still holds if a namespace is misconfigured or a kernel bug lets a job reach further.
It allows only the system calls the job runtime really makes (:mod:`countylab.sandbox.syscalls`,
traced from CPython, NumPy, pandas, pyarrow and scikit-learn by ``scripts/seccomp_trace.py``);
**any other call kills the process** with SIGSYS, which the supervisor records as
``seccomp_denied`` (in the job's security record and the audit log).

Argument checks on allowed calls:

- ``clone`` is allowed only without namespace flags; with any ``CLONE_NEW*`` flag it kills.
- ``socket`` is allowed for ``AF_UNIX`` only; other families return EPERM (libraries probe the
  network and report the error; the empty network namespace would stop them anyway).
- ``clone3`` passes its flags in a struct that seccomp cannot read, so it returns ENOSYS and
  glibc falls back to ``clone``.

System calls of a foreign ABI (32-bit ``int 0x80`` on x86-64) kill the process: libseccomp's
default bad-architecture action.  The filter is compiled once per process and exported as
classic BPF for ``bwrap --seccomp``.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import socket

import pyseccomp

from countylab.sandbox.syscalls import ERRNO_PROBES, EXTRA, NEVER, TRACED

log = logging.getLogger(__name__)

#: clone() flags that would create a namespace; each kills on its own.
NAMESPACE_CLONE_FLAGS: tuple[int, ...] = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
    0x00000080,  # CLONE_NEWTIME
)
_NS_MASK = functools.reduce(lambda a, b: a | b, NAMESPACE_CLONE_FLAGS)
_SPECIAL = frozenset({"clone", "clone3", "socket"})


def allowed_syscalls() -> frozenset[str]:
    """Every call the filter lets through (some with argument checks), never one of ``NEVER``."""
    names = (set(TRACED) | set(EXTRA)) - set(ERRNO_PROBES)
    clash = names & NEVER
    if clash:  # a regenerated trace must never open these: refuse to build rather than allow
        raise RuntimeError(f"seccomp allow-list contains never-allowed calls: {sorted(clash)}")
    return frozenset(names | {"clone"})


def _exists(name: str) -> bool:
    return bool(pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) >= 0)


def build_filter() -> pyseccomp.SyscallFilter:
    """Default: kill the process.  Allowed calls listed; a few probes answer with an errno."""
    filt = pyseccomp.SyscallFilter(pyseccomp.KILL_PROCESS)
    for name in sorted(allowed_syscalls() - _SPECIAL):
        if _exists(name):
            filt.add_rule(pyseccomp.ALLOW, name)
        else:
            log.debug("seccomp: %s does not exist on this architecture", name)
    filt.add_rule(pyseccomp.ALLOW, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, _NS_MASK, 0))
    filt.add_rule(pyseccomp.ALLOW, "socket", pyseccomp.Arg(0, pyseccomp.EQ, socket.AF_UNIX))
    filt.add_rule(pyseccomp.ERRNO(errno.EPERM), "socket", pyseccomp.Arg(0, pyseccomp.NE, socket.AF_UNIX))
    if _exists("clone3"):
        filt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    return filt


@functools.lru_cache(maxsize=1)
def seccomp_bpf() -> bytes:
    """The filter as classic BPF bytes, compiled once (a few milliseconds) and reused."""
    filt = build_filter()
    fd = os.memfd_create("countylab-seccomp-build", os.MFD_CLOEXEC)
    try:
        with os.fdopen(os.dup(fd), "wb", closefd=True) as fh:
            filt.export_bpf(fh)
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def data_fd(data: bytes, name: str) -> int:
    """A readable memfd holding ``data`` at offset 0, for bwrap's ``--seccomp``/``--ro-bind-data``.

    Close-on-exec like every descriptor here; ``pass_fds`` hands it to bwrap alone.  The caller
    closes it after bwrap has started.
    """
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
