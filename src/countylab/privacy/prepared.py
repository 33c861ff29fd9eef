"""Prepared dataset versions: each table version made ready for the DP engine once, on disk.

Why: the DP engine reads clamped copies of numeric columns (``__c_<col>``), a per-unit row
number (``__rank``, 1-based, ordered by a seeded hash of the row) and that hash (``__h``).
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
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from countylab.errors import UserError
from countylab.privacy.spec import ColumnKind, SandboxLimits, TableSpec

FORMAT = 1  # bump when the layout of a prepared table changes: old files are then ignored
MAX_DELTAS = 8
ENUM_MAX = 10_000
CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "python_enable_replacements": False,
}


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def clamped_name(column: str) -> str:
    """Hidden column holding ``column`` clamped to its steward bounds (NULL → midpoint)."""
    return f"__c_{column}"


def source_ids(paths: Sequence[str]) -> list[str]:
    """Identity of each file: device, inode, size, mtime (hard links of one file share it)."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append(f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
    return out


@dataclass(frozen=True)
class Layer:
    file: str
    rows: int
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Prepared:
    """One prepared table version: its layers (base first) and the ENUM columns of the base."""

    key: str
    shape: str
    table: str
    columns: tuple[str, ...]
    layers: tuple[Layer, ...]
    enums: dict[str, list[str]]

    @property
    def rows(self) -> int:
        return sum(layer.rows for layer in self.layers)

    @property
    def sources(self) -> set[str]:
        return {s for layer in self.layers for s in layer.sources}

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @staticmethod
    def from_json(text: str) -> Prepared:
        d = json.loads(text)
        layers = tuple(Layer(x["file"], int(x["rows"]), tuple(x["sources"])) for x in d["layers"])
        return Prepared(d["key"], d["shape"], d["table"], tuple(d["columns"]), layers, dict(d["enums"]))


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:40]


def _clamp(spec: TableSpec, col: str) -> str | None:
    pol = spec.columns[col]
    b = pol.bounds()
    if pol.kind is not ColumnKind.NUMERIC or b is None:
        return None
    lo, hi = b
    value = f"coalesce(CAST({q(col)} AS DOUBLE), {(lo + hi) / 2!r})"
    return f"greatest({lo!r}, least({hi!r}, {value})) AS {q(clamped_name(col))}"


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
        return _digest(self.shape(spec), list(spec.paths))

    def shape(self, spec: TableSpec) -> str:
        """Everything but the files: versions of one dataset with one shape can share layers."""
        cols = {c: (str(p.kind), p.lower, p.upper) for c, p in sorted(spec.columns.items())}
        return _digest(FORMAT, self.seed, spec.name, spec.privacy_unit, cols)

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
            prep = self._append(spec, key, prev, added, tuple(added_ids))
        if prep is None:
            prep = self._full(spec, key, shape, tuple(ids))
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
    def _connect(self, target: Path) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(target), config=CONFIG)
        for stmt in self.settings_sql():
            con.execute(stmt)
        return con

    def _publish(self, con: duckdb.DuckDBPyConnection, tmp: Path, final: Path) -> None:
        con.execute("CHECKPOINT")
        con.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)

    def _select(self, spec: TableSpec, enums: dict[str, list[str]]) -> tuple[list[str], str]:
        """Column expressions of a prepared row (from ``src``, which has ``h``) and the hash."""
        cols = list(spec.columns)
        exprs = []
        for col in cols:
            exprs.append(f"CAST({q(col)} AS {q('__enum_' + col)}) AS {q(col)}" if col in enums else q(col))
            clamp = _clamp(spec, col)
            if clamp is not None:
                exprs.append(clamp)
        h = f"hash({int(self.seed)}, {', '.join(q(c) for c in cols)})"
        return exprs, h

    def _full(self, spec: TableSpec, key: str, shape: str, ids: tuple[str, ...]) -> Prepared:
        final = self.path(f"{key}.duckdb")
        tmp = self.root / f".{key}.{uuid.uuid4().hex}.tmp"
        con = self._connect(tmp)
        try:
            files = "[" + ", ".join(lit(p) for p in spec.paths) + "]"
            src = f"read_parquet({files})"
            types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
            enums: dict[str, list[str]] = {}
            for col, pol in spec.columns.items():
                if pol.kind is ColumnKind.CATEGORY and types.get(col) == "VARCHAR":
                    vals = con.execute(
                        f"SELECT DISTINCT {q(col)} FROM {src} WHERE {q(col)} IS NOT NULL LIMIT {ENUM_MAX + 1}"
                    ).fetchall()
                    if 0 < len(vals) <= ENUM_MAX:
                        enums[col] = sorted(str(v[0]) for v in vals)
                        values = ", ".join(lit(v) for v in enums[col])
                        con.execute(f"CREATE TYPE {q('__enum_' + col)} AS ENUM ({values})")
            _, h = self._select(spec, enums)
            if spec.privacy_unit is not None:
                rank = f"row_number() OVER (PARTITION BY {q(spec.privacy_unit)} ORDER BY __h)"
            else:
                rank = "1"
            # ENUM casts before the rank window (1-byte codes, not strings, go through its sort);
            # clamped copies after it (they need not travel through the sort at all).
            inner = [
                f"CAST({q(c)} AS {q('__enum_' + c)}) AS {q(c)}" if c in enums else q(c) for c in spec.columns
            ]
            outer = []
            for col in spec.columns:
                outer.append(q(col))
                clamp = _clamp(spec, col)
                if clamp is not None:
                    outer.append(clamp)
            con.execute(
                f"CREATE TABLE {q(spec.name)} AS SELECT {', '.join(outer)}, "
                f"CAST({rank} AS INTEGER) AS __rank, __h "
                f"FROM (SELECT {', '.join(inner)}, {h} AS __h FROM {src}) AS s"
            )
            rows = con.execute(f"SELECT count(*) FROM {q(spec.name)}").fetchone()
            cols = tuple(r[0] for r in con.execute(f"DESCRIBE {q(spec.name)}").fetchall())
            self._publish(con, tmp, final)
        except BaseException:
            con.close()
            tmp.unlink(missing_ok=True)
            raise
        layer = Layer(final.name, int(rows[0]) if rows else 0, ids)
        return Prepared(key, shape, spec.name, cols, (layer,), enums)

    def _append(
        self, spec: TableSpec, key: str, prev: Prepared, added: list[str], ids: tuple[str, ...]
    ) -> Prepared | None:
        """Add ``added`` files to ``prev`` as one layer; ``None`` when a full preparation is better."""
        base, deltas = prev.layers[0], list(prev.layers[1:])
        merge = len(deltas) >= MAX_DELTAS
        final = self.path(f"{key}.delta.duckdb")
        tmp = self.root / f".{key}.{uuid.uuid4().hex}.tmp"
        con = self._connect(tmp)
        try:
            files = "[" + ", ".join(lit(p) for p in added) + "]"
            src = f"read_parquet({files})"
            for col, values in prev.enums.items():
                seen = con.execute(
                    f"SELECT DISTINCT {q(col)} FROM {src} WHERE {q(col)} IS NOT NULL"
                ).fetchall()
                if not {str(v[0]) for v in seen} <= set(values):
                    raise _Fallback  # a new category: the base's ENUM cannot hold it
                con.execute(f"CREATE TYPE {q('__enum_' + col)} AS ENUM ({', '.join(lit(v) for v in values)})")
            for i, layer in enumerate(prev.layers):
                con.execute(f"ATTACH {lit(str(self.path(layer.file)))} AS {q(f'__p{i}')} (READ_ONLY)")
            exprs, h = self._select(spec, prev.enums)
            con.execute(f"CREATE TEMP TABLE __b AS SELECT {', '.join(exprs)}, {h} AS __h FROM {src}")
            batch = con.execute("SELECT count(*) FROM __b").fetchone()
            n_batch = int(batch[0]) if batch else 0
            delta_rows = sum(d.rows for d in deltas) + n_batch
            if delta_rows > base.rows:
                raise _Fallback  # the deltas outgrew the base: prepare afresh (amortised O(1) a row)
            names = [c for c in prev.columns if c not in ("__rank", "__h")]
            plain = ", ".join(f"b.{q(c)}" for c in names)
            t = q(spec.name)
            if spec.privacy_unit is not None:
                u = q(spec.privacy_unit)
                earlier = " UNION ALL ".join(
                    f"SELECT {u} AS u, __rank AS r FROM {q(f'__p{i}')}.{t}" for i in range(len(prev.layers))
                )
                con.execute(
                    f"CREATE TEMP TABLE __o AS SELECT p.u, max(p.r) AS n FROM ({earlier}) AS p "
                    f"JOIN (SELECT DISTINCT {u} AS u FROM __b) AS k ON p.u IS NOT DISTINCT FROM k.u "
                    "GROUP BY p.u"
                )
                rank = f"coalesce(o.n, 0) + row_number() OVER (PARTITION BY b.{u} ORDER BY b.__h)"
                body = (
                    f"SELECT {plain}, CAST({rank} AS INTEGER) AS __rank, b.__h FROM __b AS b "
                    f"LEFT JOIN __o AS o ON b.{u} IS NOT DISTINCT FROM o.u"
                )
            else:
                body = f"SELECT {plain}, CAST(1 AS INTEGER) AS __rank, b.__h FROM __b AS b"
            all_cols = ", ".join(q(c) for c in prev.columns)
            if merge:
                first = len(prev.layers) - len(deltas)
                olds = [f"SELECT {all_cols} FROM {q(f'__p{i}')}.{t}" for i in range(first, len(prev.layers))]
                body = " UNION ALL ".join([*olds, body])
            con.execute(f"CREATE TABLE {t} AS {body}")
            for i in range(len(prev.layers)):
                con.execute(f"DETACH {q(f'__p{i}')}")
            self._publish(con, tmp, final)
        except _Fallback:
            con.close()
            tmp.unlink(missing_ok=True)
            return None
        except BaseException:
            con.close()
            tmp.unlink(missing_ok=True)
            raise
        layers: tuple[Layer, ...]
        if merge:
            sources = tuple(s for d in deltas for s in d.sources) + ids
            layers = (base, Layer(final.name, delta_rows, sources))
        else:
            layers = (*prev.layers, Layer(final.name, n_batch, ids))
        return Prepared(key, prev.shape, spec.name, prev.columns, layers, prev.enums)

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


class _Fallback(Exception):
    """An append that is better done as a full preparation."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
