"""The scheduler runs due connectors (on SQLite and PostgreSQL metadata) and leaves the others alone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from countylab.connectors import service as connectors
from countylab.connectors.scheduler import Scheduler
from countylab.storage.catalog_models import Connector, SyncRun
from tests.connectors.conftest import make_world, with_password
from tests.support import build_lab

pytestmark = pytest.mark.postgres


def test_thread_runs_a_due_connector_and_moves_its_schedule(tmp_path: Path, db_url: str, source, source_url):
    lab = build_lab(tmp_path, db_url)
    try:
        world = make_world(lab)
        provider = world.principal("provider")
        common = {"source_table": "people", "cursor_column": "updated_at"}
        with lab.tx() as s:
            due = connectors.create_connector(
                s,
                provider,
                world.dataset_id,
                dsn=with_password(source_url),
                key_columns=["id"],
                interval_s=600,
                **common,
            ).id
            later = connectors.create_connector(s, provider, world.dataset_id, dsn=source_url, **common).id
            paused = connectors.create_connector(
                s, provider, world.dataset_id, dsn=source_url, enabled=False, **common
            ).id
            s.get(Connector, due).next_run_at = datetime.now(UTC) - timedelta(seconds=5)
            s.get(Connector, later).next_run_at = datetime.now(UTC) + timedelta(hours=1)
        scheduler = Scheduler(lab, poll_s=0.05)
        scheduler.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with lab.tx() as s:
                    done = s.query(SyncRun).filter(SyncRun.status != "running").all()
                    if done:
                        break
                time.sleep(0.05)
        finally:
            scheduler.stop()
        assert not scheduler.running
        with lab.tx() as s:
            runs = [(r.connector_id, r.status, r.rows, r.version) for r in s.query(SyncRun)]
            moved = connectors.aware(s.get(Connector, due).next_run_at)
        assert runs == [(due, "succeeded", 3, 1)]
        assert moved is not None and moved > datetime.now(UTC) + timedelta(seconds=500)
        assert paused not in {r[0] for r in runs}
    finally:
        lab.close()


def test_tick_runs_each_due_connector_once_even_when_it_fails(world, source_url):
    now = datetime(2030, 1, 1, tzinfo=UTC)
    provider = world.principal("provider")
    with world.lab.tx() as s:
        cid = connectors.create_connector(
            s,
            provider,
            world.dataset_id,
            dsn=source_url,
            source_table="missing_table",
            cursor_column="id",
            interval_s=60,
        ).id
        s.get(Connector, cid).next_run_at = now - timedelta(seconds=1)
    scheduler = Scheduler(world.lab, clock=lambda: now)
    [run_id] = scheduler.tick()
    assert scheduler.tick() == []  # claimed: next run one interval later, not again now
    with world.lab.tx() as s:
        run = s.get(SyncRun, run_id)
        assert run is not None and run.status == "failed" and "no_table" in run.error
        assert connectors.aware(s.get(Connector, cid).next_run_at) == now + timedelta(seconds=60)
    later = Scheduler(world.lab, clock=lambda: now + timedelta(seconds=61))
    assert len(later.tick()) == 1  # the schedule goes on after a failure
