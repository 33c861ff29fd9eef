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
import logging
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from countylab.sandbox.identity import SandboxIdentity

log = logging.getLogger(__name__)

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MNT_DETACH = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


@dataclass(frozen=True)
class OutboxUsage:
    files: int  # files, folders and links (what the tmpfs counts as inodes, less its root)
    bytes: int
    limit: str | None  # "outbox_bytes" | "outbox_files" | "outbox_depth" when a quota was reached


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


MAX_DEPTH = 32  # folders nested deeper are not collected (``outbox_depth``)
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


@dataclass
class _Counts:
    files: int = 0
    bytes: int = 0
    too_deep: bool = False
    skipped: int = 0  # entries that could not be read or written (never named anywhere)
    budget: int | None = None  # bytes that may still be copied (the byte quota)
    over_bytes: bool = False  # a file was left behind because it would pass the byte quota


def _copy_entry(entry: os.DirEntry[str], src_fd: int, dst_fd: int, depth: int, counts: _Counts) -> None:
    st = entry.stat(follow_symlinks=False)
    name = entry.name
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
    elif stat.S_ISDIR(st.st_mode):
        if depth >= MAX_DEPTH:
            counts.too_deep = True
            return
        os.mkdir(name, 0o755, dir_fd=dst_fd)
        child_src = os.open(name, _DIR, dir_fd=src_fd)
        try:
            child_dst = os.open(name, _DIR, dir_fd=dst_fd)
            try:
                _copy_tree(child_src, child_dst, depth + 1, counts)
            finally:
                os.close(child_dst)
        finally:
            os.close(child_src)
    elif stat.S_ISREG(st.st_mode):
        # A sparse file occupies no tmpfs pages, so the tmpfs quota never saw it: its apparent
        # size is what copying would write to the lab's disk.  A file larger than what is left
        # of the byte quota is not copied at all (the run ends ``outbox_bytes``).
        if counts.budget is not None and st.st_size > counts.budget:
            counts.over_bytes = True
            return
        fd_in = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src_fd)
        mode = 0o755 if st.st_mode & 0o111 else 0o644
        with os.fdopen(fd_in, "rb") as fin:
            fd_out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=dst_fd)
            with os.fdopen(fd_out, "wb") as fout:
                limit = counts.budget if counts.budget is not None else -1
                while limit != 0 and (chunk := fin.read(1 << 20 if limit < 0 else min(1 << 20, limit))):
                    fout.write(chunk)
                    if limit > 0:
                        limit -= len(chunk)
                counts.bytes += fout.tell()
                if counts.budget is not None:
                    counts.budget -= fout.tell()
    else:
        return  # FIFOs, sockets, device nodes: never outputs
    counts.files += 1


def _copy_tree(src_fd: int, dst_fd: int, depth: int, counts: _Counts) -> None:
    """Copy with directory descriptors only: no path is ever built from the job's names, so no
    link is followed, no length limit is hit and no error message can carry a name."""
    with os.scandir(src_fd) as entries:
        for entry in entries:
            try:
                _copy_entry(entry, src_fd, dst_fd, depth, counts)
            except OSError:
                counts.skipped += 1


def collect(outbox: Path, *, mounted: bool, max_bytes: int, max_files: int) -> OutboxUsage:
    """Copy the job's outbox onto disk as the lab's own files and check the quotas.

    ``mounted``: the outbox is the capped tmpfs (unmounted here, whatever happens).
    """
    limit = is_full(outbox) if mounted else None
    staging = outbox.parent / f".{outbox.name}.collect-{secrets.token_hex(4)}"
    staging.mkdir(mode=0o700)
    counts = _Counts(budget=max_bytes)
    try:
        root_fd = os.open(outbox, _DIR)
        try:
            dst_fd = os.open(staging, _DIR)
            try:
                _copy_tree(root_fd, dst_fd, 0, counts)
            finally:
                os.close(dst_fd)
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
    if counts.skipped:
        log.warning("outbox %s: %d entries could not be collected", outbox, counts.skipped)
    if limit is None and counts.over_bytes:
        limit = "outbox_bytes"
    if limit is None and counts.files > max_files:
        limit = "outbox_files"
    if limit is None and counts.bytes > max_bytes:
        limit = "outbox_bytes"
    if limit is None and counts.too_deep:
        limit = "outbox_depth"
    return OutboxUsage(files=counts.files, bytes=counts.bytes, limit=limit)


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
