"""The seccomp filter every sandboxed job runs under, compiled with libseccomp.

Namespaces already hide the network and the host's processes; the filter is the second wall
that still holds if a namespace is misconfigured or a kernel bug lets a job build a new one.
It denies (EPERM, so programs fail cleanly instead of dying) the system calls a data job never
needs and an escape usually does: non-AF_UNIX sockets, ptrace and cross-process memory access,
mounting, namespaces (unshare, setns, clone with namespace flags), BPF, the kernel keyring,
perf events, userfaultfd, io_uring (which can open sockets without the socket() call), module
loading, kexec, reboot and swap control.

``clone3`` passes its flags in a struct that seccomp cannot read, so it returns ENOSYS: glibc
then falls back to ``clone``, whose flags we can check.  System calls of a foreign ABI (32-bit
``int 0x80`` on x86-64) kill the process: libseccomp's default bad-architecture action.

The filter is compiled once per process and exported as classic BPF for ``bwrap --seccomp``.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import socket

import pyseccomp

log = logging.getLogger(__name__)

#: Denied outright, whatever the arguments.
DENIED_SYSCALLS: tuple[str, ...] = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "open_by_handle_at",
    "name_to_handle_at",
    "acct",
    "quotactl",
)

#: clone() flags that would create a namespace; each is denied on its own.
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


def _add(filt: pyseccomp.SyscallFilter, action: int, name: str, *args: pyseccomp.Arg) -> None:
    if pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) < 0:
        # Not a system call on this architecture (e.g. a newer call on an old ABI): nothing to deny.
        log.debug("seccomp: %s does not exist on this architecture", name)
        return
    filt.add_rule(action, name, *args)


def build_filter() -> pyseccomp.SyscallFilter:
    """Build the libseccomp filter object (default allow, listed calls denied)."""
    deny = pyseccomp.ERRNO(errno.EPERM)
    filt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        _add(filt, deny, name)
    # socket(): AF_UNIX only (Python's multiprocessing and some libraries use it locally).
    _add(filt, deny, "socket", pyseccomp.Arg(0, pyseccomp.NE, socket.AF_UNIX))
    for flag in NAMESPACE_CLONE_FLAGS:
        _add(filt, deny, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    _add(filt, pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    return filt


@functools.lru_cache(maxsize=1)
def seccomp_bpf() -> bytes:
    """The filter as classic BPF bytes, compiled once (about a millisecond) and reused."""
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
