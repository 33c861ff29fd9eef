"""Prepared dataset versions: each table version made ready for the DP engine once, on disk.

Why: the DP engine reads clamped copies of numeric columns (``__c_<col>``), their fixed-point
row integers (``__i_<col>``, ``fixedpoint.row_int_sql`` of the clamped value: a function of the
value and the steward's bounds, both part of the key, so exact sums are plain integer sums), a
per-unit row number (``__rank``, 1-based, ordered by a seeded hash of the row) and that hash
(``__h``).
Computing them on every query would make DP queries slower than raw ones; keeping them in
worker memory made the worker hold whole tables.  So a version is prepared once into a DuckDB
file inside the lab's data directory, ``<data_dir>/prepared/<key>.duckdb`` (written under a
temporary name in the same folder, then renamed), and every query connection ATTACHes it
read-only: DuckDB pages it through its buffer pool under the memory limit, spilling only into
``<data_dir>/prepared/tmp``.  Nothing is truncated here: bounding happens at query time on the
relation actually aggregated (``__rank`` makes the one-table case a filter).

Appends: a version whose files are an earlier prepared version's files plus new ones (a push,
an append upload, a compaction that hard-links the earlier parts) is prepared as a *layer*:
only the new rows are read and written, their ``__rank`` continues their unit's count, and the
table is a ``UNION ALL`` view over the layers.  After ``MAX_DELTAS`` layers the deltas are
merged into one; when the deltas outgrow the base the version is prepared afresh, so the
amortised cost of a row stays constant.  Files are recognised by inode (a hard link is the same
file), size and modification time, never by name.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import duckdb

from countylab.errors import UserError
from countylab.privacy.prepared_build import (
    CONFIG,
    FORMAT,
    Builder,
    Layer,
    Prepared,
    clamped_name,
    digest,
    lit,
    q,
    source_ids,
)
from countylab.privacy.spec import SandboxLimits, TableSpec

__all__ = ["CONFIG", "Layer", "Prepared", "PreparedStore", "clamped_name", "source_ids"]


class PreparedStore:
    """Prepared versions under ``root`` (``<data_dir>/prepared``); safe across processes."""

    def __init__(self, root: Path, *, memory_limit: str, threads: int, seed: int) -> None:
        self.root, self.memory_limit, self.threads, self.seed = root, memory_limit, threads, seed
        self.root.mkdir(parents=True, exist_ok=True)
        self.spill_dir = self.root / "tmp" / str(os.getpid())

    @staticmethod
    def for_limits(limits: SandboxLimits, seed: int) -> PreparedStore:
        """The store of ``limits.data_dir``, or a private temporary one (tests, embedded use)."""
        root = Path(limits.data_dir) / "prepared" if limits.data_dir else _scratch_root()
        return PreparedStore(root, memory_limit=limits.memory_limit, threads=limits.threads, seed=seed)

    # -- names ----------------------------------------------------------------------------
    def key(self, spec: TableSpec) -> str:
        """Everything that changes a prepared row; not k, key sets or join rules (query-time)."""
        return digest(self.shape(spec), list(spec.paths))

    def shape(self, spec: TableSpec) -> str:
        """Everything but the files: versions of one dataset with one shape can share layers."""
        cols = {c: (str(p.kind), p.lower, p.upper) for c, p in sorted(spec.columns.items())}
        return digest(FORMAT, self.seed, spec.name, spec.privacy_unit, cols)

    def path(self, file: str) -> Path:
        return self.root / file

    def settings_sql(self) -> list[str]:
        """Settings of every connection touching prepared data: limits and a spill folder here."""
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        return [
            f"SET memory_limit={lit(self.memory_limit)}",
            f"SET threads={int(self.threads)}",
            "SET preserve_insertion_order=false",
            "SET enable_progress_bar=false",
            f"SET temp_directory={lit(str(self.spill_dir))}",
        ]

    # -- lookup ---------------------------------------------------------------------------
    def load(self, key: str) -> Prepared | None:
        try:
            prep = Prepared.from_json((self.root / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError):
            return None
        if not all(self.path(layer.file).is_file() for layer in prep.layers):
            return None
        return prep

    def touch(self, key: str) -> None:
        """Mark a version as used now (``gc`` removes versions unused for a while)."""
        with contextlib.suppress(OSError):
            os.utime(self.root / f"{key}.json")

    def gc(self, max_idle_s: float = 7 * 86400.0) -> list[str]:
        """Remove versions unused for ``max_idle_s`` and every file no remaining version needs.

        A worker that still has a removed file open keeps reading it (POSIX); its next
        connection finds the version gone and prepares it again.
        """
        now = time.time()
        keep: set[str] = set()
        removed: list[str] = []
        for manifest in sorted(self.root.glob("*.json")):
            prep = self.load(manifest.stem)
            idle = now - manifest.stat().st_mtime > max_idle_s
            if prep is None or idle:
                manifest.unlink(missing_ok=True)
                removed.append(manifest.name)
            else:
                keep |= {layer.file for layer in prep.layers}
        for path in self.root.iterdir():
            stale_tmp = path.name.startswith(".") and now - path.stat().st_mtime > 86400.0
            old = now - path.stat().st_mtime > 3600.0  # a file just renamed awaits its manifest
            orphan = path.suffix == ".duckdb" and path.name not in keep and old
            old_lock = path.suffix == ".lock" and now - path.stat().st_mtime > max_idle_s
            if path.is_file() and (stale_tmp or orphan or old_lock):
                path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed

    def get(self, spec: TableSpec) -> Prepared:
        """The prepared version of ``spec``, preparing it (once, under a file lock) if needed."""
        key = self.key(spec)
        found = self.load(key)
        if found is not None:
            return found
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f"{key}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                found = self.load(key)
                if found is not None:
                    return found
                return self._prepare(spec, key)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)  # the lock file stays: unlinking it races

    def _prepare(self, spec: TableSpec, key: str) -> Prepared:
        if not spec.paths:
            raise UserError("数据集没有数据", "the dataset has no data yet", table=spec.name)
        ids = source_ids(spec.paths)
        shape = self.shape(spec)
        prev = self._append_base(shape, ids)
        prep = None
        if prev is not None and prev.sources == set(ids):  # the same files under other names
            prep = Prepared(key, shape, spec.name, prev.columns, prev.layers, prev.enums)
        elif prev is not None:
            added = [p for p, i in zip(spec.paths, ids, strict=True) if i not in prev.sources]
            added_ids = [i for i in ids if i not in prev.sources]
            prep = self._builder().append(spec, key, prev, added, tuple(added_ids))
        if prep is None:
            prep = self._builder().full(spec, key, shape, tuple(ids))
        tmp = self.root / f".{key}.{uuid.uuid4().hex}.json"
        tmp.write_text(prep.to_json(), encoding="utf-8")
        os.replace(tmp, self.root / f"{key}.json")
        return prep

    def _append_base(self, shape: str, ids: list[str]) -> Prepared | None:
        """The largest prepared version of the same shape whose files are all among ``ids``."""
        best: Prepared | None = None
        wanted = set(ids)
        for manifest in self.root.glob("*.json"):
            prep = self.load(manifest.stem)
            if prep is None or prep.shape != shape:
                continue
            srcs = prep.sources
            if srcs <= wanted and (best is None or prep.rows > best.rows):
                best = prep
        return best

    # -- building -------------------------------------------------------------------------

    def _builder(self) -> Builder:
        return Builder(self.root, self.seed, self.settings_sql())

    # -- the query side -------------------------------------------------------------------
    def attach(self, con: duckdb.DuckDBPyConnection, spec: TableSpec, prep: Prepared) -> None:
        """ATTACH the layers of ``prep`` read-only and name them ``spec.name`` (a view)."""
        cols = ", ".join(q(c) for c in prep.columns)
        parts = []
        for i, layer in enumerate(prep.layers):
            alias = q(f"__{spec.name}_{i}")
            con.execute(f"ATTACH {lit(str(self.path(layer.file)))} AS {alias} (READ_ONLY)")
            parts.append(f"SELECT {cols} FROM {alias}.{q(spec.name)}")
        con.execute(f"CREATE VIEW {q(spec.name)} AS {' UNION ALL '.join(parts)}")

    def clean_spill(self) -> None:
        """Remove spill folders of processes that no longer exist (a crashed worker's leftovers)."""
        tmp = self.root / "tmp"
        for folder in tmp.iterdir() if tmp.is_dir() else []:
            if folder.name.isdigit() and not _alive(int(folder.name)):
                shutil.rmtree(folder, ignore_errors=True)


_SCRATCH: list[Path] = []


def _scratch_root() -> Path:
    """One temporary folder per process for labs without a data directory, removed at exit."""
    if not _SCRATCH:
        _SCRATCH.append(Path(tempfile.mkdtemp(prefix="countylab-dp-")))
        atexit.register(shutil.rmtree, _SCRATCH[0], True)
    return _SCRATCH[0] / "prepared"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
