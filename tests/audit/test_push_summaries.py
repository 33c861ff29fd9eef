"""Feed pushes are audited as one summary per dataset per period; no push goes un-audited.

Real lab (SQLite, warehouse in ``tmp_path``).  Pinned: a feed's pushes write no individual
event; the push that lands after a period closes it writes that period's ``dataset.push_summary``
(batches, rows, first/last key) in its own transaction, and the hash chain verifies; a person's
push stays an individual ``dataset.push``; a clean stop writes the open period; and a process
killed with SIGKILL loses nothing beyond its open period, which ``recover_unsummarised`` writes
back from ``push_keys`` so that the summaries add up to every batch applied.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from countylab import audit
from countylab.catalog import push_summary
from countylab.catalog import service as catalog
from countylab.config import Settings
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.storage.catalog_models import PushKey
from countylab.storage.models import AuditEvent

CSV = "resident_id,name,income\n1,甲,10\n2,乙,20\n"


def _setup(data_dir: Path, period_s: float = 600) -> tuple[Lab, int]:
    lab = Lab(Settings(data_dir=data_dir, push_summary_period_s=period_s))
    lab.migrate()
    with lab.tx() as s:
        org = ids.create_org(s, SYSTEM, name="县交通局", kind="department")
        ds_id = catalog.create_dataset(
            s,
            SYSTEM,
            name="live",
            title="实时",
            org_id=org.id,
            privacy_unit="person",
            privacy_unit_column="resident_id",
        ).id
    first = data_dir.parent / "v1.csv"
    first.write_text(CSV, encoding="utf-8")
    lab.ingestion.ingest_file(SYSTEM, ds_id, first)
    return lab, ds_id


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, 4, 0, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Lab, int, Clock]]:
    lab, ds_id = _setup(tmp_path / "lab")
    clock = Clock()
    lab.ingestion.committer.summaries.clock = clock
    try:
        yield lab, ds_id, clock
    finally:
        lab.close()


def _rows(start: int, n: int) -> list[dict[str, Any]]:
    return [{"resident_id": start + i, "name": "推", "income": i} for i in range(n)]


def _events(lab: Lab, action: str) -> list[audit.AuditRecord]:
    with lab.read() as s:
        found = s.query(AuditEvent).filter(AuditEvent.action == action).order_by(AuditEvent.id).all()
        return [audit.log.to_record(e) for e in found]


def test_feed_pushes_become_one_summary_per_period(world: tuple[Lab, int, Clock]) -> None:
    lab, ds_id, clock = world
    feed = push_summary.feed_principal()
    for i in range(5):
        assert lab.ingestion.push(feed, ds_id, _rows(100 + 10 * i, 3), f"feed-{i}") == (True, 3)
        clock.now += timedelta(seconds=5)
    assert lab.ingestion.push(feed, ds_id, _rows(900, 3), "feed-0") == (False, 0)  # duplicate: not counted
    assert _events(lab, "dataset.push") == [] and _events(lab, "dataset.push_summary") == []
    clock.now += timedelta(minutes=10)  # the next push lands in a new period and closes the old one
    assert lab.ingestion.push(feed, ds_id, _rows(500, 2), "feed-5") == (True, 2)
    (summary,) = _events(lab, "dataset.push_summary")
    assert summary.actor == "demo-feed" and summary.target == f"dataset:{ds_id}"
    d = summary.details
    assert (d["batches"], d["rows"], d["failures"]) == (5, 15, 0)
    assert (d["first_key"], d["last_key"]) == ("feed-0", "feed-4")
    assert d["period_start"] == "2026-12-05T04:00:00+00:00" and d["period_end"] == "2026-12-05T04:10:00+00:00"
    with lab.read() as s:
        assert s.query(PushKey).filter_by(dataset_id=ds_id).count() == 6  # every push still recorded
        assert audit.verifier.verify_configured(s, lab.settings).summary().ok  # the chain covers summaries
    # a clean stop writes the open period (feed-5) at once
    assert lab.ingestion.committer.flush_summaries() == 1
    assert [e.details["batches"] for e in _events(lab, "dataset.push_summary")] == [5, 1]


def test_a_failed_feed_push_is_an_individual_event_and_counted(
    world: tuple[Lab, int, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    from countylab.catalog import push_commit

    lab, ds_id, clock = world
    feed = push_summary.feed_principal()
    original = push_commit._record

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("metadata database unavailable")

    monkeypatch.setattr(push_commit, "_record", broken)
    with pytest.raises(RuntimeError):
        lab.ingestion.push(feed, ds_id, _rows(100, 3), "fails")
    monkeypatch.setattr(push_commit, "_record", original)
    (failed,) = _events(lab, "dataset.push")
    assert failed.outcome == "failed" and failed.details["batches"][0]["key"] == "fails"
    assert lab.ingestion.push(feed, ds_id, _rows(100, 3), "fails") == (True, 3)  # the retry lands
    lab.ingestion.committer.summaries.flush(lab.tx)
    (summary,) = _events(lab, "dataset.push_summary")
    assert (summary.details["batches"], summary.details["failures"], summary.outcome) == (1, 1, "failed")


def test_a_persons_push_stays_an_individual_event(world: tuple[Lab, int, Clock]) -> None:
    lab, ds_id, _ = world
    assert lab.ingestion.push(SYSTEM, ds_id, _rows(100, 2), "by-hand") == (True, 2)
    (event,) = _events(lab, "dataset.push")
    assert event.details["batches"][0]["key"] == "by-hand"


def test_summary_is_readable_on_the_page_helpers(world: tuple[Lab, int, Clock]) -> None:
    from countylab import labels

    lab, ds_id, clock = world
    feed = push_summary.feed_principal()
    lab.ingestion.push(feed, ds_id, _rows(100, 3), "a")
    lab.ingestion.committer.summaries.flush(lab.tx)
    (summary,) = _events(lab, "dataset.push_summary")
    shown = dict(labels.details_pairs(summary.details, "zh-CN"))
    assert labels.action_label(summary.action) == "推送汇总" and shown["批次"] == "1" and shown["行数"] == "3"
    assert shown["周期开始"] == "2026-12-05 12:00"  # Beijing time
    assert labels.system_name("demo-feed", "zh-CN") == "演示数据源"


KILLED = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tests.audit.test_push_summaries import _setup, _rows
    from countylab.catalog import push_summary
    lab, ds_id = _setup(Path({data!r}), period_s=1)
    feed = push_summary.feed_principal()
    for i in range(3):
        lab.ingestion.push(feed, ds_id, _rows(100 + 10 * i, 2), f"k{{i}}")
    time.sleep(1.2)  # the next push closes the first period: its summary is committed
    for i in range(3, 7):
        lab.ingestion.push(feed, ds_id, _rows(100 + 10 * i, 2), f"k{{i}}")
    print(ds_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_kill_9_loses_nothing_beyond_the_open_period(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])
    data = tmp_path / "lab"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED.format(root=root, data=str(data))],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    ds_id = int(proc.stdout.split()[0])
    lab = Lab(Settings(data_dir=data, push_summary_period_s=1))
    try:
        closed = _events(lab, "dataset.push_summary")
        before = sum(e.details["batches"] for e in closed)
        assert before >= 3  # at least the first period was summarised before the kill
        with lab.tx() as s:
            applied = s.query(PushKey).filter_by(dataset_id=ds_id).count()
            recovered = push_summary.recover_unsummarised(s, ds_id, period_s=1)
        assert applied == 7
        assert recovered is not None and before + recovered.batches == applied
        (last,) = _events(lab, "dataset.push_summary")[-1:]
        assert last.details["recovered"] is True and last.details["last_key"] == "k6"
        with lab.tx() as s:  # recovery is idempotent: nothing is missing any more
            assert push_summary.recover_unsummarised(s, ds_id, period_s=1) is None
        with lab.read() as s:
            report = audit.verifier.verify_configured(s, lab.settings).summary()
        assert report.ok, report.problem
    finally:
        lab.close()
