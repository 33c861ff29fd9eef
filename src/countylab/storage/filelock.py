"""Claims on files in the data folder that live exactly as long as their holder.

A writer that leaves a file in a shared folder for a while (a pushed group's hidden Parquet file
between its fsync and its publication) holds an exclusive ``flock`` on it; crash recovery, run by
another process or by the leader at any time, acts only on files nobody holds.  The kernel drops
the lock when the holder dies (``kill -9`` included), so a crashed writer's files become
recoverable at once, while a live writer's are never touched.  The data folder is local to one
host (like its SQLite database, or the warehouse of a PostgreSQL lab), where ``flock`` is exact.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def create_claimed(path: Path) -> int:
    """Create ``path`` empty and already locked; returns the descriptor that holds the claim.

    The file is made under a temporary name, locked, then renamed into place, so no scanner ever
    sees it unclaimed (the rename keeps the inode, and the lock with it).
    """
    tmp = path.with_name(f".t-{uuid.uuid4().hex}-{path.name.lstrip('.')}")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(tmp, path)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return fd


def release(fd: int) -> None:
    """Drop a claim (the file itself stays wherever its holder moved it)."""
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)


@contextlib.contextmanager
def unclaimed(path: Path) -> Iterator[bool]:
    """Yields True, holding the file's lock, if no live process claims ``path``; else False."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:  # the holder may have published (renamed) or dropped it just before we locked
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        yield same
    finally:
        os.close(fd)
