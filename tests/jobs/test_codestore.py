"""Stored job code: plain files only, size-capped, archives cannot escape."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import inspect

from countylab.errors import PermissionDenied, TooLarge, ValidationFailed
from countylab.jobs import CodeLimits, store_code
from countylab.lab import Lab


def _folder(tmp: Path) -> Path:
    src = tmp / "src"
    (src / "pkg").mkdir(parents=True, exist_ok=True)
    (src / "main.py").write_text("print(1)\n")
    (src / "pkg" / "util.py").write_text("X = 1\n")
    return src


def test_folder_copied_with_digest(tmp_path: Path) -> None:
    stored = store_code(_folder(tmp_path), tmp_path / "store")
    assert (stored.path / "pkg" / "util.py").read_text() == "X = 1\n"
    assert stored.files == 2 and stored.bytes == 15 and len(stored.sha256) == 64
    assert store_code(_folder(tmp_path), tmp_path / "store").sha256 == stored.sha256


@pytest.mark.parametrize("target", ["/etc/passwd", "main.py"])
def test_symlinks_refused_even_inside(tmp_path: Path, target: str) -> None:
    src = _folder(tmp_path)
    os.symlink(target, src / "link.py")
    with pytest.raises(PermissionDenied) as info:
        store_code(src, tmp_path / "store")
    assert info.value.details["reason"] == "symlink"
    assert list((tmp_path / "store").iterdir()) == []  # nothing half-copied left behind


def test_size_and_file_count_capped(tmp_path: Path) -> None:
    src = _folder(tmp_path)
    (src / "data.bin").write_bytes(b"x" * 5000)
    with pytest.raises(TooLarge):
        store_code(src, tmp_path / "store", limits=CodeLimits(max_bytes=4096))
    with pytest.raises(TooLarge):
        store_code(src, tmp_path / "store", limits=CodeLimits(max_files=2))


def _tar(tmp: Path, add: list[tarfile.TarInfo]) -> Path:
    path = tmp / "code.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for info in add:
            data = b"print(1)\n" if info.isreg() else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def test_tar_archive_accepted_and_escapes_refused(tmp_path: Path) -> None:
    ok = store_code(_tar(tmp_path, [tarfile.TarInfo("a/main.py")]), tmp_path / "store")
    assert (ok.path / "a" / "main.py").read_text() == "print(1)\n"
    with pytest.raises(ValidationFailed):
        store_code(_tar(tmp_path, [tarfile.TarInfo("../evil.py")]), tmp_path / "store")
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    with pytest.raises(PermissionDenied):
        store_code(_tar(tmp_path, [link]), tmp_path / "store")


def test_zip_archive_with_symlink_refused(tmp_path: Path) -> None:
    path = tmp_path / "code.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("main.py", "print(1)\n")
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/shadow")
    with pytest.raises(PermissionDenied):
        store_code(path, tmp_path / "store")


def test_migration_0003_matches_the_models(lab: Lab) -> None:
    """The hand-written migration and jobs_models.py describe the same tables and columns."""
    from countylab.storage import jobs_models

    insp = inspect(lab.engine)
    for table in (jobs_models.Job, jobs_models.JobAttempt, jobs_models.UsageRecord, jobs_models.ProjectQuota):
        t = table.__table__
        db_cols = {c["name"]: c for c in insp.get_columns(t.name)}
        assert set(db_cols) == {c.name for c in t.columns}, t.name
        for col in t.columns:
            assert db_cols[col.name]["nullable"] == col.nullable, (t.name, col.name)
        db_idx = {i["name"] for i in insp.get_indexes(t.name)}
        assert {i.name for i in t.indexes} <= db_idx, t.name
