"""Group commit of pushed micro-batches: many pushes, one Parquet file, one fsync, one transaction.

Each push is validated in its request thread, then handed to a committer thread that gathers
whatever arrives within ``max_wait_s`` (per dataset), writes the rows as one hidden Parquet file,
fsyncs it, records every push's idempotency key and audit event in one metadata transaction,
and only then renames the file into the dataset's stream (visible to readers) and answers.

Exactly once, even across a crash: the hidden file carries its pushes' keys in its Parquet
metadata.  At start-up ``recover`` publishes a hidden file whose keys are committed (the crash
fell between the commit and the rename) and deletes one whose keys are not (never acknowledged,
so the client retries).  Pushes without a key get a generated one for the same reason.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.identity.access import Principal
from countylab.ingest import TableSchema
from countylab.storage.catalog_models import PushKey
from countylab.storage.models import Dataset
from countylab.storage.warehouse import Warehouse, storage_schema

KEYS_META = b"countylab.push_keys"
HIDDEN_PREFIX = ".g-"


@dataclass
class PendingPush:
    actor: Principal
    dataset_id: int
    name: str
    schema: TableSchema
    batches: list[pa.RecordBatch]
    key: str
    explicit_key: bool
    rows: int
    done: Future[int | None] = field(default_factory=Future)  # its audit event id; None: duplicate


class GroupCommitter:
    def __init__(
        self, warehouse: Warehouse, tx: Callable[[], Any], *, max_wait_s: float = 0.0, max_rows: int = 200_000
    ) -> None:
        self.warehouse, self.tx = warehouse, tx
        self.max_wait_s, self.max_rows = max_wait_s, max_rows
        self._queue: queue.Queue[PendingPush] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, push: PendingPush, timeout_s: float = 60.0) -> bool:
        """Queue one validated push and wait until it is durable and visible; False if duplicate."""
        self._ensure_thread()
        self._queue.put(push)
        event_id = push.done.result(timeout=timeout_s)
        if event_id is None:
            return False
        audit.log.note_request_event(event_id)  # written by the committer thread for this request
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="countylab-push-commit", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            group = [first]
            rows = first.rows
            # No timer: take what queued up while the previous group was being written.  Alone, a
            # push commits at once; under load, groups grow by themselves (classic group commit).
            deadline = time.monotonic() + self.max_wait_s
            while rows < self.max_rows:
                try:
                    remaining = deadline - time.monotonic()
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                group.append(item)
                rows += item.rows
            by_dataset: dict[int, list[PendingPush]] = {}
            for item in group:
                by_dataset.setdefault(item.dataset_id, []).append(item)
            for items in by_dataset.values():
                try:
                    self._commit(items)
                except BaseException as exc:  # noqa: BLE001 - every waiting request must hear back
                    for item in items:
                        if not item.done.done():
                            item.done.set_exception(exc)

    def _commit(self, items: list[PendingPush]) -> None:
        first = items[0]
        accepted: list[PendingPush] = []
        seen: set[str] = set()
        with self.tx() as s:
            existing = set(
                s.execute(
                    select(PushKey.key).where(
                        PushKey.dataset_id == first.dataset_id, PushKey.key.in_([i.key for i in items])
                    )
                ).scalars()
            )
        for item in items:
            if item.key in existing or item.key in seen:
                item.done.set_result(None)
            else:
                seen.add(item.key)
                accepted.append(item)
        if not accepted:
            return
        stream = self.warehouse.stream_dir(first.name)
        stream.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        hidden = stream / f"{HIDDEN_PREFIX}{stamp}.parquet"
        visible = stream / f"g-{stamp}.parquet"
        try:
            _write_durable(hidden, accepted, [i.key for i in accepted])
            with self.tx() as s:
                events = _record(s, accepted)
            os.rename(hidden, visible)
        except BaseException:
            hidden.unlink(missing_ok=True)
            raise
        for item, event_id in zip(accepted, events, strict=True):
            item.done.set_result(event_id)


def _write_durable(path: Path, items: list[PendingPush], keys: list[str]) -> None:
    target = storage_schema(items[0].schema.to_arrow())
    meta = {**(target.metadata or {}), KEYS_META: json.dumps(keys).encode()}
    target = target.with_metadata(meta)
    with pq.ParquetWriter(path, target, compression="zstd") as writer:
        for item in items:
            for batch in item.batches:
                writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=target))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _record(session: Session, items: list[PendingPush]) -> list[int]:
    dataset_id = items[0].dataset_id
    for item in items:
        session.add(PushKey(dataset_id=dataset_id, key=item.key))
    session.flush()
    ds = session.get(Dataset, dataset_id)
    if ds is not None:
        ds.data_updated_at = datetime.now(UTC)
    return [
        audit.append(
            session,
            actor_id=item.actor.user_id,
            actor=item.actor.username,
            action="dataset.push",
            target=f"dataset:{dataset_id}",
            details={"rows": item.rows, "key": item.key if item.explicit_key else None},
        ).id
        for item in items
    ]


def recover_hidden(warehouse: Warehouse, tx: Callable[[], Any], name_to_id: dict[str, int]) -> int:
    """Publish or drop group files a crash left hidden (see the module docstring)."""
    handled = 0
    for name, dataset_id in name_to_id.items():
        stream = warehouse.stream_dir(name)
        for hidden in sorted(stream.glob(f"{HIDDEN_PREFIX}*.parquet")) if stream.is_dir() else []:
            try:
                meta = pq.ParquetFile(hidden).schema_arrow.metadata or {}
                keys = json.loads(meta.get(KEYS_META, b"[]"))
            except Exception:  # noqa: BLE001 - a torn file was never acknowledged
                keys = []
            committed = False
            if keys:
                with tx() as s:
                    committed = (
                        s.execute(
                            select(PushKey.key).where(
                                PushKey.dataset_id == dataset_id, PushKey.key == keys[0]
                            )
                        ).first()
                        is not None
                    )
            if committed:
                os.rename(hidden, stream / hidden.name[1:])  # ".g-…" → "g-…"
            else:
                hidden.unlink(missing_ok=True)
            handled += 1
    return handled
