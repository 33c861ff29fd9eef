"""Election and cross-process locks, with a second real process that holds them and is killed -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from countylab.storage import filelock
from countylab.storage.db import make_engine
from countylab.storage.leader import Election, NamedLocks
from tests.conftest import _pg_database

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from countylab.storage import filelock
    from countylab.storage.db import make_engine
    from countylab.storage.leader import Election, NamedLocks

    kind, url, path = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    engine = make_engine(url)
    if kind == "election":
        e = Election(engine, on_elected=lambda: print("elected", flush=True), on_deposed=lambda: None,
                     lock_file=path, retry_s=0.2)
        e.start()
    elif kind == "named":
        cm = NamedLocks(engine, path).hold("dataset-7")
        cm.__enter__()
        print("elected", flush=True)
    else:
        filelock.create_claimed(path)
        print("elected", flush=True)
    time.sleep(600)
    """
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lab.db'}"
    else:
        for raw in _pg_database():
            yield raw.replace("postgresql://", "postgresql+psycopg://")


def holder(kind: str, url: str, path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, kind, url, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "elected", "the holder did not get the lock first"
    return proc


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_election_one_leader_and_takeover_after_kill_9(url: str, tmp_path: Path) -> None:
    lock_file = tmp_path / "lab.db.leader"
    other = holder("election", url, lock_file)
    engine = make_engine(url)
    elected, deposed = threading.Event(), threading.Event()
    me = Election(engine, on_elected=elected.set, on_deposed=deposed.set, lock_file=lock_file, retry_s=0.2)
    try:
        me.start()
        time.sleep(1.0)  # five campaigns, all lost while the other process lives
        assert not elected.is_set() and not me.is_leader
        kill(other)
        t0 = time.monotonic()
        assert elected.wait(10), "no takeover after the leader died"
        assert time.monotonic() - t0 < 5 and me.is_leader
        # a second candidate in this process does not lead beside us
        second = Election(engine, on_elected=lambda: None, on_deposed=lambda: None, lock_file=lock_file)
        second.start()
        assert not second.is_leader
        second.stop()
    finally:
        me.stop()
        kill(other) if other.poll() is None else None
        engine.dispose()
    assert deposed.is_set()  # stopping a leader stops its singletons


def test_named_lock_excludes_other_processes_until_they_die(url: str, tmp_path: Path) -> None:
    locks_dir = tmp_path / "locks"
    other = holder("named", url, locks_dir)
    engine = make_engine(url)
    locks = NamedLocks(engine, locks_dir)
    try:
        with locks.hold("dataset-7", wait=False) as got:
            assert not got
        with locks.hold("dataset-8", wait=False) as got:  # another name is free
            assert got
        kill(other)
        deadline = time.monotonic() + 10
        while True:
            with locks.hold("dataset-7", wait=False) as got:
                if got:
                    break
            assert time.monotonic() < deadline, "the dead holder's lock was never released"
            time.sleep(0.1)
    finally:
        kill(other) if other.poll() is None else None
        engine.dispose()


def test_claimed_file_is_left_alone_until_its_writer_dies(tmp_path: Path) -> None:
    path = tmp_path / ".g-1.parquet"
    other = holder("file", "sqlite://", path)
    try:
        with filelock.unclaimed(path) as free:
            assert not free
        kill(other)
        with filelock.unclaimed(path) as free:
            assert free
    finally:
        kill(other) if other.poll() is None else None
    assert not list(tmp_path.glob(".t-*"))  # the temporary name never stays


def test_a_frozen_leader_loses_its_lock_on_postgresql(tmp_path: Path) -> None:
    """SIGSTOP, not death: the leader's session goes idle and PostgreSQL ends it (idle_session_timeout)."""
    for raw in _pg_database():
        url = raw.replace("postgresql://", "postgresql+psycopg://")
        other = holder("election", url, tmp_path / "unused.leader")
        engine = make_engine(url)
        elected = threading.Event()
        me = Election(
            engine, on_elected=elected.set, on_deposed=lambda: None, lock_file=tmp_path / "x", retry_s=0.2
        )
        try:
            os.kill(other.pid, signal.SIGSTOP)
            t0 = time.monotonic()
            me.start()
            assert elected.wait(30), "a frozen leader kept the lock"
            assert 3.0 < time.monotonic() - t0 < 20  # the idle timeout (5 s), not at once, not never
        finally:
            me.stop()
            os.kill(other.pid, signal.SIGCONT)
            kill(other) if other.poll() is None else None
            engine.dispose()
