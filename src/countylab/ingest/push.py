"""Near-real-time pushes: small validated batches that are readable at once, compacted later.

A push is validated against the dataset schema and lands as one small Parquet file in
``root/<dataset_id>/stream/``; readers take the current version's files plus these stream files
(:meth:`Warehouse.read_paths`), so pushed rows are queryable as soon as ``push`` returns.

Idempotency: a push with a key lands under a file name derived from the key through an
exclusive hard link, so two concurrent copies cannot both land; the key is then recorded
through :class:`SeenKeys` (a SQL table in production), which remembers it after compaction
has removed the stream file.  The file lands *before* the key is recorded: a crash in between
can at worst forget a key, never drop rows the client was told were stored.

Compaction folds stream files into a new version (previous parts hard-linked, stream rows as one
new part) and lists them in the version manifest, so readers of that version skip them even
before :meth:`PushBuffer.confirm_compaction` deletes them after the catalog commit.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from countylab.errors import TooLarge, ValidationFailed
from countylab.ingest.readers import records_to_batch
from countylab.ingest.schema import TableSchema, validate_batch
from countylab.storage.warehouse import VersionFiles, Warehouse, write_parquet_file


class SeenKeys(Protocol):
    def add_if_new(self, dataset_id: str, key: str) -> bool:
        """Record ``key`` for ``dataset_id``; False if it was recorded before (atomically)."""
        ...


class InMemorySeenKeys:
    """Fake for tests and the embedded demo; production uses a unique SQL index."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()

    def add_if_new(self, dataset_id: str, key: str) -> bool:
        if (dataset_id, key) in self._seen:
            return False
        self._seen.add((dataset_id, key))
        return True


@dataclass(frozen=True)
class PushResult:
    accepted: bool  # False: the idempotency key was seen before and nothing was written
    rows: int
    path: Path | None


@dataclass(frozen=True)
class Compaction:
    version: VersionFiles
    stream_files: tuple[Path, ...]


class PushBuffer:
    def __init__(
        self, warehouse: Warehouse, seen: SeenKeys, *, max_rows: int = 100_000, max_bytes: int = 64 << 20
    ) -> None:
        self.warehouse = warehouse
        self.seen = seen
        self.max_rows = max_rows
        self.max_bytes = max_bytes

    def _batches(self, payload: list[dict[str, Any]] | bytes, schema: TableSchema) -> list[pa.RecordBatch]:
        if isinstance(payload, bytes):
            if len(payload) > self.max_bytes:
                raise TooLarge(
                    f"单次推送过大，上限 {self.max_bytes} 字节",
                    f"Push too large; the limit is {self.max_bytes} bytes",
                    reason="too_large",
                    limit=self.max_bytes,
                )
            try:
                raw = list(ipc.open_stream(payload))
            except (pa.ArrowInvalid, OSError):
                raise ValidationFailed(
                    "推送内容不是有效的 Arrow IPC 数据流",
                    "The push is not a valid Arrow IPC stream",
                    reason="bad_ipc",
                ) from None
        else:
            raw = [records_to_batch(payload, schema.names, row_offset=0)] if payload else []
        rows = sum(b.num_rows for b in raw)
        if rows > self.max_rows:
            raise TooLarge(
                f"单次推送最多 {self.max_rows} 行，本次 {rows} 行",
                f"A push holds at most {self.max_rows} rows, got {rows}",
                reason="too_many_rows",
                limit=self.max_rows,
            )
        if not rows:
            raise ValidationFailed("推送没有数据行", "The push has no rows", reason="empty")
        out, offset = [], 0
        for batch in raw:
            out.append(validate_batch(batch, schema, row_offset=offset))
            offset += batch.num_rows
        return out

    def validate(self, payload: list[dict[str, Any]] | bytes, schema: TableSchema) -> list[pa.RecordBatch]:
        """Parse and validate one push (size caps, Arrow IPC or dict rows, types) without storing it."""
        return self._batches(payload, schema)

    def push(
        self,
        dataset_id: str,
        schema: TableSchema,
        payload: list[dict[str, Any]] | bytes,
        *,
        idempotency_key: str | None = None,
    ) -> PushResult:
        """Validate and store one push; readable by :meth:`Warehouse.read_paths` on return."""
        batches = self._batches(payload, schema)
        stream = self.warehouse.stream_dir(dataset_id)
        stream.mkdir(parents=True, exist_ok=True)
        tmp = stream / f".tmp-{uuid.uuid4().hex}.parquet"
        try:
            rows = write_parquet_file(tmp, batches, schema.to_arrow())
            fd = os.open(tmp, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
            if idempotency_key is None:
                final = stream / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
                os.rename(tmp, final)
                return PushResult(True, rows, final)
            digest = hashlib.sha256(f"{dataset_id}\x00{idempotency_key}".encode()).hexdigest()[:40]
            final = stream / f"k-{digest}.parquet"
            try:
                os.link(tmp, final)
            except FileExistsError:
                return PushResult(False, 0, None)
            if not self.seen.add_if_new(dataset_id, idempotency_key):
                final.unlink()
                return PushResult(False, 0, None)
            return PushResult(True, rows, final)
        finally:
            tmp.unlink(missing_ok=True)

    def compact(
        self, dataset_id: str, into_version: int, previous_files: list[Path] | None, schema: TableSchema
    ) -> Compaction | None:
        """Write version ``into_version`` = previous files + current stream files; None if no stream.

        Readers are not blocked: nothing they may be reading is modified or removed here.
        """
        stream_files = self.warehouse.pending_stream(dataset_id)
        if not stream_files:
            return None
        with self.warehouse.stage(dataset_id) as staging:
            for path in previous_files or []:
                staging.add_file(path)
            staging.write(_iter_files(stream_files), schema.to_arrow())
            staging.compacted_stream = [p.name for p in stream_files]
            version = staging.commit(into_version)
        return Compaction(version, tuple(stream_files))

    def confirm_compaction(self, compaction: Compaction) -> None:
        """After the catalog recorded the new version: drop the folded stream files."""
        for path in compaction.stream_files:
            path.unlink(missing_ok=True)


def _iter_files(paths: list[Path]) -> Iterator[pa.RecordBatch]:
    for path in paths:
        yield from pq.ParquetFile(path).iter_batches()
