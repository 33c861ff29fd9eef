"""The push group commit's audit trail: one event per group that names every batch it applied.

A real lab (SQLite, warehouse in ``tmp_path``); groups are forced by a committer that waits a
moment for more pushes, so the concurrency of the machine running the tests does not matter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from countylab import audit
from countylab.catalog import push_commit
from countylab.catalog import service as catalog
from countylab.config import Settings
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.storage.models import AuditEvent

CSV = "resident_id,name,income\n1,甲,10\n2,乙,20\n"


@pytest.fixture
def lab_and_dataset(tmp_path: Path) -> Iterator[tuple[Lab, int]]:
    lab = Lab(Settings(data_dir=tmp_path / "lab"))
    lab.migrate()
    with lab.tx() as s:
        org = ids.create_org(s, SYSTEM, name="县民政局", kind="department")
        ds_id = catalog.create_dataset(
            s,
            SYSTEM,
            name="live",
            title="实时",
            org_id=org.id,
            privacy_unit="person",
            privacy_unit_column="resident_id",
        ).id
    first = tmp_path / "v1.csv"
    first.write_text(CSV, encoding="utf-8")
    lab.ingestion.ingest_file(SYSTEM, ds_id, first)
    try:
        yield lab, ds_id
    finally:
        lab.close()


def _rows(start: int, n: int) -> list[dict[str, Any]]:
    return [{"resident_id": start + i, "name": "推", "income": i} for i in range(n)]


def _push_events(lab: Lab, ds_id: int) -> list[audit.AuditRecord]:
    with lab.tx() as s:
        found = (
            s.query(AuditEvent)
            .filter(AuditEvent.action == "dataset.push", AuditEvent.target == f"dataset:{ds_id}")
            .order_by(AuditEvent.id)
            .all()
        )
        return [audit.log.to_record(ev) for ev in found]


def _count(lab: Lab, ds_id: int) -> int:
    with lab.tx() as s:
        paths = [str(p) for p in lab.ingestion.read_paths(catalog.get_dataset(s, ds_id))]
    return int(duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [paths]).fetchone()[0])


def test_one_event_per_group_lists_every_batch(lab_and_dataset: tuple[Lab, int]) -> None:
    lab, ds_id = lab_and_dataset
    lab.ingestion.committer.max_wait_s = 0.3  # gather the concurrent pushes into one group
    keys = [f"batch-{i}" for i in range(8)]
    start = threading.Barrier(len(keys) + 2)  # + one retry of batch-0 + one push without a key
    results: dict[str, tuple[bool, int]] = {}

    def push(label: str, key: str | None, first_id: int, n: int) -> None:
        start.wait()
        results[label] = lab.ingestion.push(SYSTEM, ds_id, _rows(first_id, n), key)

    threads = [
        threading.Thread(target=push, args=(k, k, 1000 * (i + 1), i + 1)) for i, k in enumerate(keys)
    ] + [
        threading.Thread(target=push, args=("retry", "batch-0", 1000, 1)),
        threading.Thread(target=push, args=("keyless", None, 50_000, 3)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # exactly once: batch-0 and its concurrent retry applied one time between them
    assert sorted([results["batch-0"][0], results["retry"][0]]) == [False, True]
    assert all(results[k] == (True, i + 1) for i, k in enumerate(keys) if k != "batch-0")
    assert results["keyless"] == (True, 3)
    expected_rows = sum(range(1, 9)) + 3
    assert _count(lab, ds_id) == 2 + expected_rows

    events = _push_events(lab, ds_id)
    assert len(events) < len(keys)  # pushes shared events: one per group, not one per push
    listed = [b for ev in events for b in ev.details["batches"]]
    explicit = sorted(b["key"] for b in listed if not b["generated"])
    assert explicit == sorted(keys)  # every applied batch once, the duplicate nowhere
    generated = [b for b in listed if b["generated"]]
    assert len(generated) == 1 and generated[0]["key"].startswith("auto:") and generated[0]["rows"] == 3
    for ev in events:
        assert ev.details["rows"] == sum(b["rows"] for b in ev.details["batches"])
        assert ev.actor == SYSTEM.username
        stream = lab.warehouse.stream_dir("live")
        assert (stream / ev.details["file"]).exists()  # the event names the file that holds its rows
    assert {b["key"]: b["rows"] for b in listed if not b["generated"]} == {
        k: i + 1 for i, k in enumerate(keys)
    }

    # a steward finds the group event behind any key
    with lab.tx() as s:
        for key in keys:
            found = push_commit.find_push_event(s, ds_id, key)
            assert found is not None and key in [b["key"] for b in found.details["batches"]]
        assert push_commit.find_push_event(s, ds_id, "batch-") is None  # whole keys only
        assert push_commit.find_push_event(s, ds_id, "never-pushed") is None
        assert audit.verify(s).ok


def test_a_group_with_an_already_committed_key_applies_only_the_new_ones(
    lab_and_dataset: tuple[Lab, int],
) -> None:
    lab, ds_id = lab_and_dataset
    assert lab.ingestion.push(SYSTEM, ds_id, _rows(3000, 2), "old") == (True, 2)
    lab.ingestion.committer.max_wait_s = 0.3
    start = threading.Barrier(3)
    results: dict[str, tuple[bool, int]] = {}

    def push(key: str, first_id: int) -> None:
        start.wait()
        results[key] = lab.ingestion.push(SYSTEM, ds_id, _rows(first_id, 2), key)

    threads = [
        threading.Thread(target=push, args=(k, i)) for k, i in (("old", 3000), ("n1", 3100), ("n2", 3200))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"old": (False, 0), "n1": (True, 2), "n2": (True, 2)}
    assert _count(lab, ds_id) == 2 + 6
    events = _push_events(lab, ds_id)
    assert len(events) == 2 and [b["key"] for b in events[0].details["batches"]] == ["old"]
    assert sorted(b["key"] for b in events[1].details["batches"]) == ["n1", "n2"]  # one group, one event
    stream = lab.warehouse.stream_dir("live")
    assert not list(stream.glob(".g-*.parquet"))  # the refused first attempt left no file


def test_keys_with_quotes_and_wildcards_are_found(lab_and_dataset: tuple[Lab, int]) -> None:
    lab, ds_id = lab_and_dataset
    odd = ['quote"d', "per%cent_", "中文键"]
    for i, key in enumerate(odd):
        assert lab.ingestion.push(SYSTEM, ds_id, _rows(9000 + i, 1), key) == (True, 1)
    with lab.tx() as s:
        for key in odd:
            found = push_commit.find_push_event(s, ds_id, key)
            assert found is not None and [b["key"] for b in found.details["batches"]] == [key]
        assert push_commit.find_push_event(s, ds_id, "per_cent_") is None  # LIKE wildcards are literal


def test_crash_after_commit_keeps_the_file_for_recovery(lab_and_dataset: tuple[Lab, int]) -> None:
    """The publisher fails between commit and rename: the request fails, the hidden file stays,
    recovery publishes it, the retry is a duplicate, and the audit trail names the batch once."""
    lab, ds_id = lab_and_dataset
    original = push_commit.os.rename

    def crash(src: Any, dst: Any) -> None:
        if not Path(dst).name.startswith("g-"):  # only the publication fails (not the file's claim)
            return original(src, dst)
        raise OSError("simulated crash between commit and publish")

    push_commit.os.rename = crash  # type: ignore[assignment]
    try:
        with pytest.raises(OSError):
            lab.ingestion.push(SYSTEM, ds_id, _rows(7000, 5), "crash-key")
    finally:
        push_commit.os.rename = original  # type: ignore[assignment]
    stream = lab.warehouse.stream_dir("live")
    assert len(list(stream.glob(".g-*.parquet"))) == 1 and not list(stream.glob("g-*.parquet"))
    assert _count(lab, ds_id) == 2  # not visible before recovery
    lab.recover(grace_s=0)
    assert _count(lab, ds_id) == 2 + 5
    assert lab.ingestion.push(SYSTEM, ds_id, _rows(7000, 5), "crash-key") == (False, 0)
    assert _count(lab, ds_id) == 2 + 5
    events = _push_events(lab, ds_id)
    assert [b["key"] for ev in events for b in ev.details["batches"]] == ["crash-key"]


def test_a_failed_transaction_leaves_nothing_and_the_retry_applies(lab_and_dataset: tuple[Lab, int]) -> None:
    lab, ds_id = lab_and_dataset
    original = push_commit._record

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("metadata database unavailable")

    push_commit._record = broken  # type: ignore[assignment]
    try:
        with pytest.raises(RuntimeError):
            lab.ingestion.push(SYSTEM, ds_id, _rows(8000, 4), "flaky")
    finally:
        push_commit._record = original  # type: ignore[assignment]
    stream = lab.warehouse.stream_dir("live")
    assert not list(stream.glob("*g-*.parquet"))  # neither hidden nor visible
    assert lab.ingestion.push(SYSTEM, ds_id, _rows(8000, 4), "flaky") == (True, 4)
    assert _count(lab, ds_id) == 2 + 4
