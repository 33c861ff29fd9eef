"""The versioned Parquet warehouse: immutable dataset versions on local disk.

Layout::

    root/<dataset_id>/v<N>/part-00000.parquet …  _manifest.json   one committed version
    root/<dataset_id>/stream/*.parquet                             pushed rows not yet compacted
    root/.staging/<dataset_id>.<random>/                           a version being built

A version is built in a staging directory and published by one ``rename`` of that directory,
after its files and the directory are fsync'd.  So a reader sees a whole version or none, and
a process killed at any point leaves at most a staging directory (or a version directory the
catalog never recorded); :meth:`Warehouse.gc` removes both.  Files are never modified after
commit, which is what lets an append reuse earlier files through hard links.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from countylab.errors import BugError, Conflict, NotFound, ValidationFailed

_DATASET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_VERSION_DIR = re.compile(r"^v([0-9]{1,9})$")
MANIFEST = "_manifest.json"
STAGING = ".staging"
STREAM = "stream"
T = TypeVar("T")
FOLDED_LINGER_S = 60.0  # folded stream files stay this long for readers that listed them


def check_dataset_id(dataset_id: str) -> str:
    """Dataset ids become directory names, so only ``[A-Za-z0-9_-]`` (no dots, no slashes)."""
    if not _DATASET_ID.match(dataset_id):
        raise ValidationFailed(
            "数据集标识不合法：只能包含字母、数字、下划线和连字符",
            "Invalid dataset id: use letters, digits, '_' and '-' only",
            reason="bad_dataset_id",
        )
    return dataset_id


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def storage_schema(schema: pa.Schema) -> pa.Schema:
    """All fields optional on disk, so parts written by Arrow and by DuckDB read as one table."""
    return pa.schema([f.with_nullable(True) for f in schema])


def write_parquet_file(
    path: Path, batches: Iterable[pa.RecordBatch], schema: pa.Schema, *, row_group_rows: int = 1 << 20
) -> int:
    """One zstd Parquet file from batches (pushes, upsert input); returns the rows written."""
    target = storage_schema(schema)
    total = 0
    with pq.ParquetWriter(path, target, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(
                pa.RecordBatch.from_arrays(batch.columns, schema=target), row_group_size=row_group_rows
            )
            total += batch.num_rows
    return total


def prefetch(source: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Iterate ``source`` in a helper thread, ``depth`` items ahead, so that producing the next
    batch (CSV parsing, casting: Arrow releases the GIL) overlaps writing this one (Parquet
    encoding, also GIL-free).  Memory stays bounded by ``depth``; errors are re-raised here."""
    done = object()
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            slots.put(_Failure(exc))

    thread = threading.Thread(target=produce, name="countylab-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=30)


@dataclass(frozen=True)
class _Failure:
    error: BaseException


@dataclass(frozen=True)
class VersionFiles:
    dataset_id: str
    version: int
    paths: tuple[Path, ...]
    row_count: int
    bytes: int
    sha256: dict[str, str]  # file name -> hex digest
    compacted_stream: tuple[str, ...] = ()


@dataclass(frozen=True)
class GcReport:
    removed: list[Path] = field(default_factory=list)


class Staging:
    """A version under construction; abort (or an exception in ``with``) removes it entirely."""

    def __init__(
        self, warehouse: Warehouse, dataset_id: str, path: Path, *, row_group_rows: int, rows_per_file: int
    ) -> None:
        self.warehouse = warehouse
        self.dataset_id = dataset_id
        self.path = path
        self.row_group_rows = row_group_rows
        self.rows_per_file = rows_per_file
        self.compacted_stream: list[str] = []
        self._parts = 0
        self._known_sha: dict[str, str] = {}
        self._done = False

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._done:
            self.abort()

    def next_part(self) -> Path:
        """Path for the next part file (also used by DuckDB ``COPY … TO``)."""
        path = self.path / f"part-{self._parts:05d}.parquet"
        self._parts += 1
        return path

    def write(self, batches: Iterable[pa.RecordBatch], schema: pa.Schema | None = None) -> int:
        """Write batches as zstd Parquet with bounded row groups; returns the rows written.

        Batches are gathered to ``row_group_rows`` before each write so that small input batches
        do not produce tiny row groups; memory stays at about one row group.
        """
        writer: pq.ParquetWriter | None = None
        target: pa.Schema | None = storage_schema(schema) if schema is not None else None
        pending: list[pa.RecordBatch] = []
        pending_rows = file_rows = total = 0

        def flush() -> None:
            nonlocal writer, pending, pending_rows, file_rows
            if not pending:
                return
            assert target is not None
            if writer is None:
                writer = pq.ParquetWriter(self.next_part(), target, compression="zstd")
                file_rows = 0
            writer.write_table(pa.Table.from_batches(pending, target), row_group_size=self.row_group_rows)
            file_rows += pending_rows
            pending, pending_rows = [], 0
            if file_rows >= self.rows_per_file:
                writer.close()
                writer = None

        try:
            for batch in prefetch(batches):
                if target is None:
                    target = storage_schema(batch.schema)
                batch = pa.RecordBatch.from_arrays(batch.columns, schema=target)
                total += batch.num_rows
                while batch.num_rows:
                    take = min(batch.num_rows, self.row_group_rows - pending_rows)
                    pending.append(batch.slice(0, take))
                    pending_rows += take
                    batch = batch.slice(take)
                    if pending_rows >= self.row_group_rows:
                        flush()
            flush()
        finally:
            if writer is not None:
                writer.close()
        return total

    def add_file(self, source: Path) -> Path:
        """Reuse a committed Parquet file as the next part: a hard link, or a copy across devices."""
        target = self.next_part()
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
        known = self.warehouse.manifest_of(source.parent).get("files")
        if isinstance(known, dict) and isinstance(known.get(source.name), str):
            self._known_sha[target.name] = known[source.name]
        return target

    def commit(self, version: int) -> VersionFiles:
        """Publish as ``v<version>`` by fsync + atomic rename; ``Conflict`` if it already exists."""
        if self._done:
            raise BugError("staging already finished")
        parts = sorted(self.path.glob("part-*.parquet"))
        rows = 0
        hashes: dict[str, str] = {}
        for part in parts:
            rows += pq.ParquetFile(part).metadata.num_rows
            hashes[part.name] = self._known_sha.get(part.name) or sha256_file(part)
            os.chmod(part, 0o444)
            _fsync_path(part)
        manifest = {"rows": rows, "files": hashes, "compacted_stream": self.compacted_stream}
        (self.path / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
        _fsync_path(self.path / MANIFEST)
        _fsync_path(self.path)
        target = self.warehouse.version_dir(self.dataset_id, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise Conflict(
                f"数据集 {self.dataset_id} 的版本 {version} 已存在",
                f"Version {version} of dataset {self.dataset_id} already exists",
                reason="version_exists",
            )
        os.rename(self.path, target)
        _fsync_path(target.parent)
        _fsync_path(self.path.parent)
        self._done = True
        return VersionFiles(
            self.dataset_id,
            version,
            tuple(target / p.name for p in parts),
            rows,
            sum((target / p.name).stat().st_size for p in parts),
            hashes,
            tuple(self.compacted_stream),
        )

    def abort(self) -> None:
        self._done = True
        shutil.rmtree(self.path, ignore_errors=True)


class Warehouse:
    def __init__(self, root: Path, *, row_group_rows: int = 1 << 20, rows_per_file: int = 16 << 20) -> None:
        self.root = root
        self.row_group_rows = row_group_rows
        self.rows_per_file = rows_per_file
        (root / STAGING).mkdir(parents=True, exist_ok=True)

    @property
    def scratch_dir(self) -> Path:
        """Where temporary files (e.g. transcoded GBK uploads) belong: ``gc`` cleans it after a crash."""
        return self.root / STAGING

    def dataset_dir(self, dataset_id: str) -> Path:
        return self.root / check_dataset_id(dataset_id)

    def version_dir(self, dataset_id: str, version: int) -> Path:
        if version < 1:
            raise BugError(f"version numbers start at 1, got {version}")
        return self.dataset_dir(dataset_id) / f"v{version}"

    def stream_dir(self, dataset_id: str) -> Path:
        return self.dataset_dir(dataset_id) / STREAM

    def stage(self, dataset_id: str) -> Staging:
        path = self.root / STAGING / f"{check_dataset_id(dataset_id)}.{uuid.uuid4().hex}"
        path.mkdir(parents=True)
        return Staging(
            self, dataset_id, path, row_group_rows=self.row_group_rows, rows_per_file=self.rows_per_file
        )

    def versions(self, dataset_id: str) -> list[int]:
        folder = self.dataset_dir(dataset_id)
        found = [_VERSION_DIR.match(p.name) for p in folder.iterdir()] if folder.is_dir() else []
        return sorted(int(m.group(1)) for m in found if m)

    def files(self, dataset_id: str, version: int) -> list[Path]:
        folder = self.version_dir(dataset_id, version)
        if not folder.is_dir():
            raise NotFound(
                f"数据集 {dataset_id} 没有版本 {version}",
                f"Dataset {dataset_id} has no version {version}",
                reason="no_such_version",
            )
        return sorted(folder.glob("part-*.parquet"))

    @staticmethod
    def manifest_of(version_dir: Path) -> dict[str, object]:
        path = version_dir / MANIFEST
        if not path.is_file():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}

    def stream_files(self, dataset_id: str) -> list[Path]:
        folder = self.stream_dir(dataset_id)
        return sorted(folder.glob("[!.]*.parquet")) if folder.is_dir() else []

    def folded_stream(self, dataset_id: str, up_to: int | None = None) -> dict[str, float]:
        """Stream files folded into a version (≤ ``up_to``): name -> when that version was written."""
        folded: dict[str, float] = {}
        folder = self.dataset_dir(dataset_id)
        for version_dir in folder.iterdir() if folder.is_dir() else []:
            match = _VERSION_DIR.match(version_dir.name)
            if not match or (up_to is not None and int(match.group(1)) > up_to):
                continue
            listed = self.manifest_of(version_dir).get("compacted_stream", [])
            if isinstance(listed, list):
                stamp = version_dir.stat().st_mtime
                folded.update({str(n): stamp for n in listed})
        return folded

    def pending_stream(self, dataset_id: str, up_to: int | None = None) -> list[Path]:
        """Pushed files not folded into any version ≤ ``up_to`` (all versions when None).

        Folded files linger a minute after compaction for readers that had listed them.
        """
        folded = self.folded_stream(dataset_id, up_to)
        return [p for p in self.stream_files(dataset_id) if p.name not in folded]

    def read_paths(self, dataset_id: str, version: int | None, *, include_stream: bool = True) -> list[Path]:
        """Files a reader should scan: the version's parts plus pushed rows not yet folded into it.

        Pass ``include_stream=False`` for AS-OF reads of an older version: stream rows are newer.
        Folded stream files are deleted only a while after their compaction (``gc``), so a reader
        that listed them just before can still open them.
        """
        paths = self.files(dataset_id, version) if version is not None else []
        if include_stream:
            paths += self.pending_stream(dataset_id, up_to=version if version is not None else 0)
        return paths

    def gc(self, known_versions: set[tuple[str, int]], *, grace_s: float = 3600.0) -> GcReport:
        """Remove what no catalog row points to: stale staging dirs, orphan versions, folded stream files.

        ``grace_s`` protects work in flight: a staging or version directory touched more recently
        is left alone, since another process may be about to commit it or record it.
        """
        report = GcReport()
        cutoff = time.time() - grace_s

        def stale(path: Path) -> bool:
            stamps = [path.stat().st_mtime] + [p.stat().st_mtime for p in path.iterdir()]
            return max(stamps) <= cutoff

        staging = self.root / STAGING
        for path in sorted(staging.iterdir()) if staging.is_dir() else []:
            if stale(path) if path.is_dir() else path.stat().st_mtime <= cutoff:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                report.removed.append(path)
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not folder.is_dir() or not _DATASET_ID.match(folder.name):
                continue
            folded: set[str] = set()
            linger = time.time() - min(grace_s, FOLDED_LINGER_S)
            for version_dir in sorted(folder.iterdir()):
                match = _VERSION_DIR.match(version_dir.name)
                if not match:
                    continue
                if (folder.name, int(match.group(1))) in known_versions:
                    listed = self.manifest_of(version_dir).get("compacted_stream", [])
                    if isinstance(listed, list) and version_dir.stat().st_mtime <= linger:
                        folded |= {str(n) for n in listed}
                elif stale(version_dir):
                    shutil.rmtree(version_dir)
                    report.removed.append(version_dir)
            stream = folder / STREAM
            for path in sorted(stream.iterdir()) if stream.is_dir() else []:
                leftover_tmp = path.name.startswith(".") and path.stat().st_mtime <= cutoff
                if path.name in folded or leftover_tmp:
                    path.unlink()
                    report.removed.append(path)
        return report
