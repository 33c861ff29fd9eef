"""The source side of the leakage scan: a :class:`~countylab.airlock.leakage.SourceIndex` per
dataset version, cached on disk.

Identifier columns are the dataset's privacy-unit column and its PII-tagged columns; the
sensitive columns (matched as whole rows) are the PII-tagged ones.  Building an index streams
the Parquet files batch by batch (:func:`countylab.airlock.leakage.build_index`), so a large
table is never held in memory; the result is saved as ``.npz`` under the cache folder, keyed by
dataset, version, the stream files not yet compacted, and the column choice, so a new version
(or a push) builds a new index and an unchanged one is read back in milliseconds.

All indexes of one lab share a secret salt kept beside them (mode 0600): they can be merged
for a job that read several datasets, and, as with a per-index salt, the hashes are useless
as a guessing table without the server's secret.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from countylab.airlock.leakage import NORMALISATION, SourceIndex, build_index


@dataclass(frozen=True)
class DatasetSource:
    name: str
    version: int | None
    paths: tuple[Path, ...]
    identifier_columns: tuple[str, ...]
    sensitive_columns: tuple[str, ...]

    def cache_key(self) -> str:
        parts = [self.name, str(self.version), *self.identifier_columns, "|", *self.sensitive_columns]
        parts += [f"normalisation:{NORMALISATION}"]
        parts += [f"{p.name}:{p.stat().st_size}" for p in self.paths if p.exists()]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


class IndexCache:
    """Indexes of dataset versions under ``root`` (one ``.npz`` per version and column choice)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _salt(self) -> bytes:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "salt"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(16))
        return path.read_bytes()

    def index_of(self, source: DatasetSource) -> SourceIndex:
        salt = self._salt()
        file = self.root / f"{source.name}-v{source.version}-{source.cache_key()}.npz"
        if file.exists():
            with np.load(file, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode())
                return SourceIndex(
                    salt,
                    data["cells"],
                    data["columns"],
                    tuple(meta["columns"]),
                    data["rows"],
                    tuple(meta["row_columns"]),
                    int(meta["rows_indexed"]),
                )
        index = build_index(
            source.paths,
            identifier_columns=source.identifier_columns,
            sensitive_columns=source.sensitive_columns,
            salt=salt,
        )
        meta = json.dumps(
            {
                "columns": index.column_names,
                "row_columns": index.row_columns,
                "rows_indexed": index.rows_indexed,
            }
        ).encode()
        tmp = file.with_name(file.name + ".part.npz")
        np.savez(
            tmp,
            cells=index.cell_hashes,
            columns=index.cell_columns,
            rows=index.row_hashes,
            meta=np.frombuffer(meta, dtype=np.uint8),
        )
        tmp.replace(file)
        return index

    def index_for(self, sources: Sequence[DatasetSource]) -> SourceIndex | None:
        """One index over every source (None when no source has an identifier column)."""
        useful = [s for s in sources if s.identifier_columns or s.sensitive_columns]
        if not useful:
            return None
        indexes = [self.index_of(s) for s in useful]
        return merge(indexes) if len(indexes) > 1 else indexes[0]


def merge(indexes: Sequence[SourceIndex]) -> SourceIndex:
    """Cells of all indexes (same salt); rows of the first index that has row hashes: a row
    tuple only means something for the columns it was built from."""
    names: list[str] = []
    hashes, cols = [], []
    for index in indexes:
        remap = np.array([_position(names, n) for n in index.column_names] or [0], dtype=np.uint16)
        hashes.append(index.cell_hashes)
        cols.append(remap[index.cell_columns] if len(index.cell_columns) else index.cell_columns)
    h = np.concatenate(hashes)
    c = np.concatenate(cols)
    uniq, first = np.unique(h, return_index=True)
    with_rows = [i for i in indexes if len(i.row_hashes)]
    rows = with_rows[0] if with_rows else indexes[0]
    return SourceIndex(
        indexes[0].salt,
        uniq.astype(np.uint64),
        c[first].astype(np.uint16),
        tuple(names),
        rows.row_hashes,
        rows.row_columns,
        sum(i.rows_indexed for i in indexes),
    )


def _position(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name)
