"""Crash safety: a process killed at any point leaves only what ``Warehouse.gc`` removes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa

from countylab.ingest import ColumnSpec, TableSchema, build_version
from countylab.storage.warehouse import Warehouse
from tests.ingest.ingest_helpers import tree

SCHEMA = TableSchema((ColumnSpec("id", "int64"),))

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import pyarrow as pa
    from countylab.ingest import ColumnSpec, TableSchema, build_version
    from countylab.storage.warehouse import Warehouse

    schema = TableSchema((ColumnSpec("id", "int64"),))
    wh = Warehouse(Path(sys.argv[1]), row_group_rows=10)

    def batches():
        for i in range(1000):
            yield pa.record_batch({"id": list(range(i * 10, i * 10 + 10))})
            if i == 5:
                print("WRITING", flush=True)
                time.sleep(60)   # killed here, mid-ingest, with part files half written

    build_version(wh, "people", 2, [p for p in wh.files("people", 1)], batches(), "append", None, schema)
    """
)


def test_sigkill_mid_ingest_then_gc_restores_clean_state(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    build_version(wh, "people", 1, None, [pa.record_batch({"id": [1, 2]})], "replace", None, SCHEMA)
    before = tree(wh.root)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(wh.root)], stdout=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"WRITING"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    staged = list((wh.root / ".staging").iterdir())
    assert len(staged) == 1 and list(staged[0].glob("part-*.parquet"))  # the crash left debris
    assert wh.versions("people") == [1]  # …but never a visible version
    assert wh.gc({("people", 1)}, grace_s=3600).removed == []  # in-flight work is protected
    report = wh.gc({("people", 1)}, grace_s=0)
    assert report.removed == staged
    assert tree(wh.root) == before


def test_version_committed_but_never_recorded_is_removed(tmp_path: Path) -> None:
    """Killed between the rename and the catalog insert: the orphan version goes, v1 stays."""
    wh = Warehouse(tmp_path / "wh")
    build_version(wh, "people", 1, None, [pa.record_batch({"id": [1]})], "replace", None, SCHEMA)
    before = tree(wh.root)
    v2 = build_version(
        wh, "people", 2, list(wh.files("people", 1)), [pa.record_batch({"id": [2]})], "append", None, SCHEMA
    )
    assert wh.gc({("people", 1)}, grace_s=0).removed == [v2.paths[0].parent]
    assert tree(wh.root) == before
    assert wh.files("people", 1)[0].read_bytes()  # the hard-linked original is intact
