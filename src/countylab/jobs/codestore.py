"""Keeping a job's code: a private, size-capped copy of plain files in the lab's data dir.

The job runs from this copy, not from the submitter's folder, so what ran is what was
submitted (its SHA-256 is recorded) and nothing can change underneath it.  Only regular files
and folders are accepted: symbolic links, hard links in archives, devices and FIFOs are refused,
because the lab — not the sandbox — reads them, and a link would make it read something else.
Folders and ``.tar``/``.tar.gz``/``.tgz``/``.zip`` archives are accepted.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from countylab.errors import PermissionDenied, TooLarge, ValidationFailed


@dataclass(frozen=True)
class CodeLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_files: int = 2000


@dataclass(frozen=True)
class StoredCode:
    path: Path
    sha256: str
    bytes: int
    files: int


def _refuse_link(name: str) -> PermissionDenied:
    return PermissionDenied(
        f"代码中不允许符号链接或特殊文件：{name}",
        f"symlinks and special files are not allowed in job code: {name}",
        path=name,
        reason="symlink",
    )


def _safe_name(name: str) -> str:
    norm = posixpath.normpath(name.replace("\\", "/"))
    if name.startswith("/") or norm == ".." or norm.startswith("../") or "\0" in name:
        raise ValidationFailed(
            f"压缩包中的路径越出目录：{name}",
            f"archive path escapes the folder: {name}",
            path=name,
            reason="path_escape",
        )
    return norm


def _walk_folder(src: Path, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, IO[bytes] | None]]:
    root = src.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d not in skip]
            filenames = [f for f in filenames if f not in skip]
        dirnames.sort()  # a stable walk gives a stable digest
        for name in dirnames + sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                yield rel, None
            elif stat.S_ISREG(mode):
                with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as fh:
                    yield rel, fh
            else:
                raise _refuse_link(rel)


def _walk_tar(src: Path) -> Iterator[tuple[str, IO[bytes] | None]]:
    with tarfile.open(src) as tar:
        for member in tar:
            name = _safe_name(member.name)
            if member.isdir():
                yield name, None
            elif member.isreg():
                yield name, tar.extractfile(member)
            else:
                raise _refuse_link(member.name)


def _walk_zip(src: Path) -> Iterator[tuple[str, IO[bytes] | None]]:
    with zipfile.ZipFile(src) as zf:
        for info in zf.infolist():
            name = _safe_name(info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if info.is_dir():
                yield name, None
            elif kind in (0, stat.S_IFREG):
                with zf.open(info) as fh:
                    yield name, fh
            else:
                raise _refuse_link(info.filename)


def _entries(src: Path, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, IO[bytes] | None]]:
    if src.is_symlink():
        raise _refuse_link(src.name)
    if src.is_dir():
        return _walk_folder(src, skip)
    if src.is_file() and tarfile.is_tarfile(src):
        return _walk_tar(src)
    if src.is_file() and zipfile.is_zipfile(src):
        return _walk_zip(src)
    raise ValidationFailed(
        f"代码必须是目录或 tar/zip 压缩包：{src.name}",
        f"code must be a folder or a tar/zip archive: {src.name}",
        reason="not_code",
    )


def store_code(
    src: Path, root: Path, *, limits: CodeLimits = CodeLimits(), skip: frozenset[str] = frozenset()
) -> StoredCode:
    """Copy ``src`` into a new folder under ``root``; refuse links, escapes and oversize code.

    ``skip``: top-level names of a folder to leave out (``.countylab``, the local run's dummy
    data and outbox)."""
    dest = root / uuid.uuid4().hex
    dest.mkdir(parents=True)
    digest = hashlib.sha256()
    total = files = 0
    mb = limits.max_bytes // (1024 * 1024)
    try:
        for name, fh in _entries(src, skip):
            target = dest / name
            if fh is None:
                target.mkdir(parents=True, exist_ok=True)
                continue
            files += 1
            if files > limits.max_files:
                raise TooLarge(
                    f"代码文件超过 {limits.max_files} 个",
                    f"more than {limits.max_files} code files",
                    reason="too_many_files",
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            digest.update(name.encode() + b"\0")
            with open(target, "xb") as out:
                while chunk := fh.read(1 << 16):
                    total += len(chunk)
                    if total > limits.max_bytes:
                        raise TooLarge(
                            f"代码超过 {mb} MB（数据请登记为数据集，不要放进代码）",
                            f"code exceeds {mb} MB (register data as a dataset)",
                            reason="code_too_large",
                        )
                    digest.update(chunk)
                    out.write(chunk)
            target.chmod(0o644)
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:  # broken archive, clashing names
        shutil.rmtree(dest, ignore_errors=True)
        why = getattr(exc, "strerror", None) or str(exc)
        raise ValidationFailed(
            f"无法保存代码：{why}", f"cannot store the code: {why}", reason="bad_archive"
        ) from exc
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return StoredCode(dest, digest.hexdigest(), total, files)
