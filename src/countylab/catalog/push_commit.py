"""Group commit of pushed micro-batches: many pushes, one Parquet file, one fsync, one transaction.

Each push is validated in its request thread, then handed to a committer thread that gathers
whatever arrives within ``max_wait_s`` (per dataset), writes the rows as one hidden Parquet file,
fsyncs it, records every push's idempotency key and ONE audit event per group (per actor: it
lists each batch's key and rows) in one metadata transaction, makes that commit durable, and
only then renames the file into the dataset's stream (visible to readers) and answers.

Why one event per group and not per push: the audit chain is a single serial head, and one
append per push made the committer thread spend ~30% of its time on audit rows and SQL round
trips (issue 11).  The group event names every batch, so :func:`find_push_event` still finds
the event behind any key, and a steward still sees who pushed how many rows, when.

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
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from countylab import audit
from countylab.audit.log import to_record
from countylab.catalog.push_summary import PushSummaries, summarised
from countylab.identity.access import Principal
from countylab.ingest import TableSchema
from countylab.storage import filelock
from countylab.storage.catalog_models import PushKey
from countylab.storage.models import AuditEvent, Dataset
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


@dataclass
class _Staged:
    """A group whose rows are durable in a hidden file, waiting for its metadata transaction."""

    items: list[PendingPush]
    hidden: Path
    visible: Path
    claim: int = -1  # flock held on the hidden file until it is published or dropped (filelock)


class GroupCommitter:
    """Two threads in a pipeline: a writer (check keys, write and fsync the hidden file) and a
    publisher (one transaction, make it durable, rename, answer).

    Why two: each stage mostly waits on a disk flush with the GIL released, so the writer's
    fsync of group N+1 overlaps the publisher's transaction and log flush of group N.  When the
    publisher is idle the writer finishes its group itself: with few clients, latency (not
    overlap) is what limits them, and each thread hand-off costs latency.  Exactly
    once still holds: a key is "in flight" from the writer's check until the publisher decided
    it, and a push whose key is in flight waits for that decision before it is checked.
    """

    def __init__(
        self,
        warehouse: Warehouse,
        tx: Callable[[], Any],
        *,
        read_tx: Callable[[], Any] | None = None,
        max_wait_s: float = 0.0,
        max_rows: int = 200_000,
        max_staged: int = 4,
    ) -> None:
        self.warehouse, self.tx, self.read_tx = warehouse, tx, read_tx or tx
        self.max_wait_s, self.max_rows = max_wait_s, max_rows
        self._queue: queue.Queue[PendingPush] = queue.Queue()
        self._staged: queue.Queue[_Staged] = queue.Queue(maxsize=max_staged)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._inflight: set[tuple[int, str]] = set()
        self._streams: set[Path] = set()  # stream directories known to exist
        self._publishing = threading.Lock()  # held while a group's transaction is decided
        self._decided = threading.Condition()
        self.summaries = PushSummaries()  # feed pushes, audited per period (period set by the Lab)

    def flush_summaries(self) -> int:
        """Write every open push summary now, between two group commits (a feed's clean stop)."""
        with self._publishing:  # no commit is between planning and applying its tallies
            return self.summaries.flush(self.tx)

    def submit(self, push: PendingPush, timeout_s: float = 60.0) -> bool:
        """Queue one validated push and wait until it is durable and visible; False if duplicate."""
        self._ensure_threads()
        self._queue.put(push)
        event_id = push.done.result(timeout=timeout_s)
        if event_id is None:
            return False
        if event_id:  # 0: a feed's push, audited in its period's summary (push_summary.py)
            audit.log.note_request_event(event_id)  # written by the publisher thread for this request
        return True

    def _ensure_threads(self) -> None:
        with self._lock:
            if len(self._threads) == 2 and all(t.is_alive() for t in self._threads):
                return
            if not self._threads or not self._threads[0].is_alive():
                writer = threading.Thread(target=self._run, name="countylab-push-write", daemon=True)
                self._threads[:1] = [writer]
                writer.start()
            if len(self._threads) < 2 or not self._threads[1].is_alive():
                publisher = threading.Thread(target=self._publish, name="countylab-push-publish", daemon=True)
                self._threads[1:] = [publisher]
                publisher.start()

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
                    staged = self._stage(items)
                except BaseException as exc:  # noqa: BLE001 - every waiting request must hear back
                    _fail(items, exc)
                    continue
                # An idle publisher: finish the group here, saving two thread hand-offs per push
                # (each may wait a GIL switch interval behind busy request threads); a busy one
                # gets the group queued, and the two stages overlap.
                if self._staged.empty() and self._publishing.acquire(blocking=False):
                    try:
                        self._finish(staged)
                    finally:
                        self._publishing.release()
                else:
                    self._staged.put(staged)

    def _stage(self, items: list[PendingPush]) -> _Staged:
        """Write the group's rows durably to a hidden file; its keys are now in flight.

        No read of the key table here: a key committed before (a client's retry) makes the
        publisher's insert fail, and only then is the group decided key by key (``_commit``).
        Retries are rare; a metadata round trip on every group is not.
        """
        first = items[0]
        with self._decided:  # a retried push whose first copy is still in flight waits for it
            while any((i.dataset_id, i.key) in self._inflight for i in items):
                self._decided.wait()
        accepted: list[PendingPush] = []
        seen: set[str] = set()
        for item in items:
            if item.key in seen:  # the same key twice in one group: decided after the first
                self._queue.put(item)
            else:
                seen.add(item.key)
                accepted.append(item)
        stream = self.warehouse.stream_dir(first.name)
        if stream not in self._streams:
            stream.mkdir(parents=True, exist_ok=True)
            self._streams.add(stream)
        stamp = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        hidden = stream / f"{HIDDEN_PREFIX}{stamp}.parquet"
        keys = {(i.dataset_id, i.key) for i in accepted}
        with self._decided:
            self._inflight |= keys
        claim = -1
        try:
            claim = filelock.create_claimed(hidden)  # recovery in any process leaves it alone
            _write_durable(hidden, accepted)
        except BaseException:
            hidden.unlink(missing_ok=True)
            filelock.release(claim)
            self._release(keys)
            raise
        return _Staged(accepted, hidden, stream / f"g-{stamp}.parquet", claim)

    def _new_keys(self, items: list[PendingPush]) -> list[PendingPush]:
        """Answer the pushes whose key is already committed (duplicates); return the others."""
        # A read transaction: SQLite takes no write lock for it.  A key another process commits
        # between this check and the insert makes that insert fail again: the push then fails
        # and its client retries (and hears "duplicate").
        with self.read_tx() as s:
            existing = set(
                s.execute(
                    select(PushKey.key).where(
                        PushKey.dataset_id == items[0].dataset_id, PushKey.key.in_([i.key for i in items])
                    )
                ).scalars()
            )
        accepted: list[PendingPush] = []
        for item in items:
            if item.key in existing:
                item.done.set_result(None)
            else:
                existing.add(item.key)  # the same key twice in one group: the second is a duplicate
                accepted.append(item)
        return accepted

    def _release(self, keys: set[tuple[int, str]]) -> None:
        with self._decided:
            self._inflight -= keys
            self._decided.notify_all()

    def _publish(self) -> None:
        while True:
            staged = self._staged.get()
            with self._publishing:
                self._finish(staged)

    def _finish(self, staged: _Staged) -> None:
        keys = {(i.dataset_id, i.key) for i in staged.items}
        try:
            self._commit(staged)
        except BaseException as exc:  # noqa: BLE001 - every waiting request must hear back
            self.summaries.record_failure(self.tx, staged.items, exc)
            _fail(staged.items, exc)
        finally:
            filelock.release(staged.claim)
            self._release(keys)

    def _commit(self, staged: _Staged, *, retried: bool = False) -> None:
        """The metadata transaction of one staged group, made durable, then the file published."""
        try:
            tallies, closed = self.summaries.plan(staged.items)
            with self.tx() as s:
                events = _record(s, staged.items, staged.visible.name)
                self.summaries.write(s, closed)  # periods this push closes: same transaction
                wal = _sqlite_wal(s)
            self.summaries.apply(tallies)
        except IntegrityError:
            staged.hidden.unlink(missing_ok=True)
            if retried:
                raise
            # a key was committed before (a retry, or another process): decide key by key
            accepted = self._new_keys(staged.items)
            if accepted:
                try:
                    _write_durable(staged.hidden, accepted)
                except BaseException:
                    staged.hidden.unlink(missing_ok=True)
                    raise
                self._commit(_Staged(accepted, staged.hidden, staged.visible), retried=True)
            return
        except BaseException:
            staged.hidden.unlink(missing_ok=True)  # nothing committed: the client retries
            raise
        # Committed: from here on the hidden file is never deleted.  Should the flush or the
        # rename fail, the request fails and ``recover`` publishes the file at the next start.
        if wal is not None:
            _fsync(wal)  # SQLite runs synchronous=NORMAL: make this commit durable before the ack
        os.rename(staged.hidden, staged.visible)
        for item in staged.items:
            item.done.set_result(events[item.actor.user_id])


def _fail(items: list[PendingPush], exc: BaseException) -> None:
    for item in items:
        if not item.done.done():
            item.done.set_exception(exc)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sqlite_wal(session: Session) -> Path | None:
    """The write-ahead log of a file-backed SQLite database (None for PostgreSQL, in-memory)."""
    url = session.get_bind().engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    wal = Path(f"{url.database}-wal")
    return wal if wal.exists() else None


def _write_durable(path: Path, items: list[PendingPush]) -> None:
    """One Parquet file, one row group, fsynced; the keys ride along for crash recovery.

    Snappy, not zstd: the file lives only until compaction rewrites it (zstd) into a version,
    and on the group-commit thread every millisecond is throughput.
    """
    target = storage_schema(items[0].schema.to_arrow())
    meta = {**(target.metadata or {}), KEYS_META: json.dumps([i.key for i in items]).encode()}
    target = target.with_metadata(meta)
    table = pa.Table.from_batches(
        [pa.RecordBatch.from_arrays(b.columns, schema=target) for i in items for b in i.batches], target
    )
    pq.write_table(table, path, compression="snappy", row_group_size=max(1, table.num_rows))
    _fsync(path)


def _record(session: Session, items: list[PendingPush], file_name: str) -> dict[int | None, int]:
    """Keys, the dataset's data time and ONE audit event per actor of the group, in one transaction.

    The event lists every batch (its idempotency key, generated ones included, and its rows) in
    the order written, and the file that holds them: a steward finds a batch by its key with
    :func:`find_push_event`.  Returns each actor's event id.
    """
    dataset_id = items[0].dataset_id
    session.execute(insert(PushKey), [{"dataset_id": dataset_id, "key": i.key} for i in items])
    session.execute(update(Dataset).where(Dataset.id == dataset_id).values(data_updated_at=datetime.now(UTC)))
    by_actor: dict[int | None, list[PendingPush]] = {}
    for item in items:
        if not summarised(item.actor):  # a feed's pushes go into its period's summary instead
            by_actor.setdefault(item.actor.user_id, []).append(item)
    events: dict[int | None, int] = {i.actor.user_id: 0 for i in items if summarised(i.actor)}
    events.update(
        {
            user_id: audit.append(
                session,
                actor_id=user_id,
                actor=mine[0].actor.username,
                action="dataset.push",
                target=f"dataset:{dataset_id}",
                details={
                    "rows": sum(i.rows for i in mine),
                    "file": file_name,
                    "batches": [
                        {"key": i.key, "rows": i.rows, "generated": not i.explicit_key} for i in mine
                    ],
                },
            ).id
            for user_id, mine in by_actor.items()
        }
    )
    return events


def find_push_event(session: Session, dataset_id: int, key: str) -> audit.AuditRecord | None:
    """The audit event of the group commit that applied the batch pushed with ``key``, if any."""
    needle = json.dumps({"key": key}, ensure_ascii=False, separators=(",", ":"))[1:-1]
    rows = session.execute(
        select(AuditEvent)
        .where(
            AuditEvent.action == "dataset.push",
            AuditEvent.target == f"dataset:{dataset_id}",
            AuditEvent.details.contains(needle, autoescape=True),
        )
        .order_by(AuditEvent.id)
    ).scalars()
    for ev in rows:
        record = to_record(ev)
        batches = record.details.get("batches") or [record.details]  # before issue 11: one per push
        if any(b.get("key") == key for b in batches):
            return record
    return None


def recover_hidden(warehouse: Warehouse, tx: Callable[[], Any], name_to_id: dict[str, int]) -> int:
    """Publish or drop group files a crash left hidden (see the module docstring)."""
    handled = 0
    for name, dataset_id in name_to_id.items():
        stream = warehouse.stream_dir(name)
        for hidden in sorted(stream.glob(f"{HIDDEN_PREFIX}*.parquet")) if stream.is_dir() else []:
            with filelock.unclaimed(hidden) as free:  # a live writer's file is in flight, not lost
                if free:
                    handled += _recover_one(hidden, stream, dataset_id, tx)
    return handled


def _recover_one(hidden: Path, stream: Path, dataset_id: int, tx: Callable[[], Any]) -> int:
    """Publish one hidden group file whose keys are committed; drop it otherwise."""
    try:
        meta = pq.ParquetFile(hidden).schema_arrow.metadata or {}
        keys = json.loads(meta.get(KEYS_META, b"[]"))
    except Exception:  # noqa: BLE001 - a torn file was never acknowledged
        keys = []
    committed = False
    if keys:
        with tx() as s:
            found = s.execute(
                select(PushKey.key).where(PushKey.dataset_id == dataset_id, PushKey.key == keys[0])
            ).first()
            committed = found is not None
    if committed:
        os.rename(hidden, stream / hidden.name[1:])  # ".g-…" → "g-…"
    else:
        hidden.unlink(missing_ok=True)
    return 1
