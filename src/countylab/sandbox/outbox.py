"""The outbox quota: a size- and inode-capped tmpfs while the job runs, collected afterwards.

When the lab runs as root, the job's outbox is a fresh tmpfs mounted on the host at the
outbox folder (``size=`` the byte quota, ``nr_inodes=`` the file quota, owned by the sandbox
user, ``nosuid,nodev,noexec``) and bound into the sandbox at ``/outbox``.  The kernel enforces
both quotas while the job writes: the write that would pass them fails with ENOSPC, at once,
whatever the number of processes.  Its pages are charged to the job's memory cgroup.

After the job has ended, :func:`collect` copies the regular files, folders and symbolic links
(never followed) onto disk — owned by the lab, so the sandbox user owns nothing afterwards —
unmounts the tmpfs and puts the copy where the outbox was.  FIFOs, sockets and device nodes
are dropped.  :func:`collect` also counts what it copies: that end-of-run check is the only
quota in ``userns`` mode (an unprivileged lab cannot mount), where the outbox is a plain folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from countylab.sandbox.identity import SandboxIdentity

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MNT_DETACH = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


@dataclass(frozen=True)
class OutboxUsage:
    files: int  # files, folders and links (what the tmpfs counts as inodes, less its root)
    bytes: int
    limit: str | None  # "outbox_bytes" | "outbox_files" when a quota was reached


def mount_outbox(path: Path, identity: SandboxIdentity, max_bytes: int, max_files: int) -> None:
    """Mount the capped tmpfs on ``path`` (an empty folder) for the sandbox user."""
    opts = f"size={max_bytes},nr_inodes={max_files + 1},mode=0700,uid={identity.uid},gid={identity.gid}"
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if _libc.mount(b"countylab-outbox", os.fsencode(path), b"tmpfs", flags, opts.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount outbox tmpfs: {os.strerror(err)}", str(path))


def unmount(path: Path) -> None:
    if _libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unmount outbox tmpfs: {os.strerror(err)}", str(path))


def is_full(path: Path, min_free_bytes: int = 4096) -> str | None:
    """Which quota the mounted tmpfs has reached, if any (read before collecting)."""
    st = os.statvfs(path)
    if st.f_ffree == 0:
        return "outbox_files"
    if st.f_bavail * st.f_frsize < min_free_bytes:
        return "outbox_bytes"
    return None


def _copy_tree(src_fd: int, dst: Path, counts: list[int]) -> None:
    for entry in os.scandir(src_fd):
        st = entry.stat(follow_symlinks=False)
        target = dst / entry.name
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(entry.name, dir_fd=src_fd), target)
        elif stat.S_ISDIR(st.st_mode):
            target.mkdir(mode=0o755)
            child = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src_fd)
            try:
                _copy_tree(child, target, counts)
            finally:
                os.close(child)
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src_fd)
            with os.fdopen(fd, "rb") as fin, open(target, "xb") as fout:
                shutil.copyfileobj(fin, fout, 1024 * 1024)
                counts[1] += fout.tell()
            target.chmod(0o755 if st.st_mode & 0o111 else 0o644)
        else:
            continue  # FIFOs, sockets, device nodes: never outputs
        counts[0] += 1


def collect(outbox: Path, *, mounted: bool, max_bytes: int, max_files: int) -> OutboxUsage:
    """Copy the job's outbox onto disk as the lab's own files and check the quotas.

    ``mounted``: the outbox is the capped tmpfs (unmounted here, whatever happens).
    """
    limit = is_full(outbox) if mounted else None
    staging = outbox.parent / f".{outbox.name}.collect-{secrets.token_hex(4)}"
    staging.mkdir(mode=0o700)
    counts = [0, 0]
    try:
        root_fd = os.open(outbox, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            _copy_tree(root_fd, staging, counts)
        finally:
            os.close(root_fd)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if mounted:
            unmount(outbox)
    if not mounted:
        shutil.rmtree(outbox)
    else:
        with contextlib.suppress(OSError):
            outbox.rmdir()
    os.rename(staging, outbox)
    outbox.chmod(0o700)
    files, size = counts
    if limit is None and files > max_files:
        limit = "outbox_files"
    if limit is None and size > max_bytes:
        limit = "outbox_bytes"
    return OutboxUsage(files=files, bytes=size, limit=limit)


def unmount_stale(root: Path, mounts_file: Path = Path("/proc/self/mounts")) -> list[Path]:
    """Detach outbox tmpfs mounts a previous lab process left under ``root`` (it died mid-job).

    Their jobs are reconciled as lost and run again in fresh attempt folders; the old tmpfs
    would otherwise hold its memory until the next reboot.
    """
    try:
        lines = mounts_file.read_text().splitlines()
    except OSError:
        return []
    stale = []
    for line in lines:
        fields = line.split()
        if len(fields) < 3 or fields[0] != "countylab-outbox" or fields[2] != "tmpfs":
            continue
        point = Path(fields[1].replace("\\040", " "))
        if point == root or root in point.parents:
            with contextlib.suppress(OSError):
                unmount(point)
                stale.append(point)
    return stale
