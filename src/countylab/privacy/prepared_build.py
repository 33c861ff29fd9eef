"""Building prepared versions: a full preparation from Parquet, or an appended layer.

Split from ``prepared.py`` (the store: naming, lookup, locking, clean-up, the query side), which
explains the layout.  Both builders write a DuckDB file under a temporary name in the store's
folder, checkpoint and fsync it, and rename it; nothing half-written is ever visible.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from countylab.privacy.fixedpoint import row_int_sql
from countylab.privacy.spec import ColumnKind, TableSpec

# Bump when the layout of a prepared table changes: old files are then ignored (the format is
# part of every prepared key).  2: ``__i_<col>`` row integers beside ``__c_<col>``.
FORMAT = 2
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


def integer_name(column: str) -> str:
    """Hidden column holding the fixed-point row integer of ``column``'s clamped value.

    ``fixedpoint.row_int_sql`` over the clamped value: a function of that value and the
    steward's bounds only (both part of the prepared key), so it is the same integer the
    planner would otherwise compute per query, computed once per row here.
    """
    return f"__i_{column}"


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


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:40]


def _clamp(spec: TableSpec, col: str) -> list[str]:
    """The hidden columns of ``col``: its clamped copy and its row integer (none if not bounded).

    Both are total over any value of the column (NULL → midpoint; NaN and ±inf clamp to a
    bound), so preparing a version never fails on a row, and the INTEGER cast cannot overflow
    (the row integer of a value within the bounds stays below 2^21, see ``fixedpoint``).
    """
    pol = spec.columns[col]
    b = pol.bounds()
    if pol.kind is not ColumnKind.NUMERIC or b is None:
        return []
    lo, hi = b
    value = f"coalesce(CAST({q(col)} AS DOUBLE), {(lo + hi) / 2!r})"
    clamped = f"greatest({lo!r}, least({hi!r}, {value}))"
    return [f"{clamped} AS {q(clamped_name(col))}", f"{row_int_sql(clamped, b)} AS {q(integer_name(col))}"]


class Fallback(Exception):
    """An append that is better done as a full preparation."""


class Builder:
    """Writes prepared files into ``root`` with the store's seed and connection settings."""

    def __init__(self, root: Path, seed: int, settings_sql: list[str]) -> None:
        self.root, self.seed, self.settings_sql = root, seed, settings_sql

    def connect(self, target: Path) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(target), config=CONFIG)
        for stmt in self.settings_sql:
            con.execute(stmt)
        return con

    def publish(self, con: duckdb.DuckDBPyConnection, tmp: Path, final: Path) -> None:
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
            exprs.extend(_clamp(spec, col))
        h = f"hash({int(self.seed)}, {', '.join(q(c) for c in cols)})"
        return exprs, h

    def full(self, spec: TableSpec, key: str, shape: str, ids: tuple[str, ...]) -> Prepared:
        final = self.root.joinpath(f"{key}.duckdb")
        tmp = self.root / f".{key}.{uuid.uuid4().hex}.tmp"
        con = self.connect(tmp)
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
                outer.extend(_clamp(spec, col))
            con.execute(
                f"CREATE TABLE {q(spec.name)} AS SELECT {', '.join(outer)}, "
                f"CAST({rank} AS INTEGER) AS __rank, __h "
                f"FROM (SELECT {', '.join(inner)}, {h} AS __h FROM {src}) AS s"
            )
            rows = con.execute(f"SELECT count(*) FROM {q(spec.name)}").fetchone()
            cols = tuple(r[0] for r in con.execute(f"DESCRIBE {q(spec.name)}").fetchall())
            self.publish(con, tmp, final)
        except BaseException:
            con.close()
            tmp.unlink(missing_ok=True)
            raise
        layer = Layer(final.name, int(rows[0]) if rows else 0, ids)
        return Prepared(key, shape, spec.name, cols, (layer,), enums)

    def append(
        self, spec: TableSpec, key: str, prev: Prepared, added: list[str], ids: tuple[str, ...]
    ) -> Prepared | None:
        """Add ``added`` files to ``prev`` as one layer; ``None`` when a full preparation is better."""
        base, deltas = prev.layers[0], list(prev.layers[1:])
        merge = len(deltas) >= MAX_DELTAS
        final = self.root.joinpath(f"{key}.delta.duckdb")
        tmp = self.root / f".{key}.{uuid.uuid4().hex}.tmp"
        con = self.connect(tmp)
        try:
            files = "[" + ", ".join(lit(p) for p in added) + "]"
            src = f"read_parquet({files})"
            for col, values in prev.enums.items():
                seen = con.execute(
                    f"SELECT DISTINCT {q(col)} FROM {src} WHERE {q(col)} IS NOT NULL"
                ).fetchall()
                if not {str(v[0]) for v in seen} <= set(values):
                    raise Fallback  # a new category: the base's ENUM cannot hold it
                con.execute(f"CREATE TYPE {q('__enum_' + col)} AS ENUM ({', '.join(lit(v) for v in values)})")
            for i, layer in enumerate(prev.layers):
                con.execute(
                    f"ATTACH {lit(str(self.root.joinpath(layer.file)))} AS {q(f'__p{i}')} (READ_ONLY)"
                )
            exprs, h = self._select(spec, prev.enums)
            con.execute(f"CREATE TEMP TABLE __b AS SELECT {', '.join(exprs)}, {h} AS __h FROM {src}")
            batch = con.execute("SELECT count(*) FROM __b").fetchone()
            n_batch = int(batch[0]) if batch else 0
            delta_rows = sum(d.rows for d in deltas) + n_batch
            if delta_rows > base.rows:
                raise Fallback  # the deltas outgrew the base: prepare afresh (amortised O(1) a row)
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
            self.publish(con, tmp, final)
        except Fallback:
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
