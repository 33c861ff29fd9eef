"""A job's outbox (输出区) as the airlock sees it: which files exist, and immutable copies.

The compute center writes each attempt's outputs under
``<outbox_root>/<project>/<job>/attempt-<n>/<action>/…``; the path of the latest attempt is
kept in ``job_attempts.outbox_path``.  When ``countylab.jobs.outbox_files(lab, job_id)`` exists
the lab passes it in and it decides which files count; otherwise this module walks the latest
succeeded attempt's folder itself.  Either way names are paths relative to the attempt folder
(``train/metrics.csv``) and symbolic links are never followed: a job could plant one pointing
at a dataset.

:func:`copy_into_store` copies a file into the airlock's own store at request time and returns
its SHA-256, so what the checkers review cannot change under them when the job is re-run.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.errors import Conflict, NotFound, TooLarge, ValidationFailed
from countylab.storage.jobs_models import Job, JobAttempt

COPY_LIMIT = 256 * 2**20
"""No single outbox file larger than this is even copied (the checks' caps are far lower)."""


@dataclass(frozen=True)
class OutboxEntry:
    name: str
    path: Path
    size: int


def _attempt_root(session: Session, job: Job) -> Path:
    if job.state != "succeeded":
        raise Conflict(
            f"作业 {job.id} 尚未成功完成，其输出区不能申请出域",
            f"job {job.id} has not succeeded: its outbox cannot be released",
            reason="job_not_succeeded",
        )
    attempt = session.execute(
        select(JobAttempt).where(JobAttempt.job_id == job.id).order_by(JobAttempt.number.desc()).limit(1)
    ).scalar_one_or_none()
    if attempt is None or not attempt.outbox_path:
        raise NotFound(f"作业 {job.id} 没有输出区", f"job {job.id} has no outbox", reason="no_outbox")
    return Path(attempt.outbox_path)


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not (Path(folder) / d).is_symlink())
        found += [Path(folder) / f for f in sorted(files)]
    return found


def list_outbox(session: Session, job: Job) -> list[OutboxEntry]:
    """Regular files in the job's latest outbox, by name."""
    root = _attempt_root(session, job)
    paths = _walk(root)
    entries: list[OutboxEntry] = []
    for path in paths:
        try:
            st = os.lstat(path)
            name = path.relative_to(root).as_posix()
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(st.st_mode):
            entries.append(OutboxEntry(name, path, st.st_size))
    return sorted(entries, key=lambda e: e.name)


def find_entry(entries: list[OutboxEntry], name: str) -> OutboxEntry:
    for entry in entries:
        if entry.name == name:
            return entry
    raise NotFound(
        f"输出区中没有文件“{name}”", f"no file {name!r} in the job's outbox", file=name, reason="no_such_file"
    )


def copy_into_store(source: Path, dest: Path, limit: int = COPY_LIMIT) -> tuple[str, int]:
    """Copy ``source`` (never through a symlink) to ``dest``, read-only; (sha256, bytes)."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ValidationFailed(
            f"无法读取输出文件：{source.name}",
            f"cannot read the output file {source.name}",
            reason="unreadable",
        ) from exc
    digest = hashlib.sha256()
    size = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with os.fdopen(fd, "rb") as src, tmp.open("wb") as out:
            if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
                raise ValidationFailed(
                    "只能提交普通文件", "only regular files can be submitted", reason="not_file"
                )
            while chunk := src.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(
                        f"文件超过 {limit >> 20} MB，不能申请出域",
                        f"the file exceeds {limit >> 20} MB and cannot be submitted",
                        reason="too_large",
                        limit=limit,
                    )
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(0o400)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return digest.hexdigest(), size


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
