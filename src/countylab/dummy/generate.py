"""Generate dummy data (模拟数据) for one dataset or a family of related datasets.

Only the approved :class:`DatasetProfile` is read — never the warehouse — so dummy data can be
given to any developer and shown on any dataset page. Foreign keys are honoured by sampling the
parent's *generated* keys, which is why related datasets are generated parents-first: code that
joins residents to households to elderly-care records finds every join partner, as it would on
real data. A parent not supplied falls back to standalone keys in the same format, so a single
dataset can still be previewed.

Output is a pure function of (profile, rows, seed, related, as_of): each column draws from its
own stream keyed by seed, dataset and column name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from countylab.dummy import columns as colgen
from countylab.dummy.output import mark_dummy
from countylab.dummy.profile import ColumnProfile, DatasetProfile, arrow_type, split_foreign_key
from countylab.errors import TooLarge, ValidationFailed

MAX_ROWS = 10_000_000
DEFAULT_AS_OF = dt.date(2025, 1, 1)  # fixed, so ages → birth dates do not drift with the clock
_SALT_NULLS = 1
_SALT_KEY_REDRAW = 100


@dataclass
class _Job:
    profile: DatasetProfile
    rows: int
    seed: int
    related: dict[str, pa.Table]
    as_of: np.datetime64

    def rng(self, column: str, salt: int = 0) -> np.random.Generator:
        return colgen.column_rng(self.seed, self.profile.name, column, salt)

    def is_unique(self, col: ColumnProfile) -> bool:
        return col.unique or self.profile.primary_key == [col.name]

    def parent(self, col: ColumnProfile) -> tuple[str, str] | None:
        """The (dataset, column) a foreign key points at, if its values are at hand."""
        if col.foreign_key is None:
            return None
        dataset, column = split_foreign_key(col.foreign_key)
        if dataset == self.profile.name or dataset in self.related:
            return dataset, column
        return None


def _parent_pool(job: _Job, col: ColumnProfile, done: dict[str, np.ndarray]) -> np.ndarray:
    ref = job.parent(col)
    assert ref is not None
    dataset, column = ref
    if dataset == job.profile.name:
        if column not in done:
            raise ValidationFailed(
                f"列 {col.name} 的外键指向不存在的列 {column}",
                f"column {col.name}: no column {column}",
                column=col.name,
                reason="foreign_key",
            )
        return done[column]
    table = job.related[dataset]
    if column not in table.column_names:
        raise ValidationFailed(
            f"列 {col.name} 的外键指向 {dataset} 中不存在的列 {column}",
            f"column {col.name}: {dataset} has no column {column}",
            column=col.name,
            reason="foreign_key",
        )
    try:
        parent = pc.cast(pc.drop_null(table.column(column)), arrow_type(col.type))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ValidationFailed(
            f"列 {col.name} 与其外键类型不符",
            f"column {col.name}: type differs from its foreign key",
            column=col.name,
            reason="foreign_key",
        ) from None
    return np.asarray(parent.to_numpy())


def _foreign_values(
    job: _Job, col: ColumnProfile, n: int, rng: np.random.Generator, done: dict[str, np.ndarray], unique: bool
) -> np.ndarray:
    pool = _parent_pool(job, col, done)
    if unique:
        pool = np.unique(pool)
        if n > len(pool):
            raise colgen.cannot_make_unique(col, n, "父表的键不够", "the parent has too few keys")
        return rng.choice(pool, size=n, replace=False)
    if len(pool) == 0:
        raise ValidationFailed(
            f"列 {col.name} 的父表没有键可用",
            f"column {col.name}: the parent table has no keys",
            column=col.name,
            reason="foreign_key",
        )
    return pool[rng.integers(0, len(pool), n)]


def _draw(
    job: _Job, col: ColumnProfile, n: int, rng: np.random.Generator, done: dict[str, np.ndarray], unique: bool
) -> np.ndarray:
    if job.parent(col) is not None:
        return _foreign_values(job, col, n, rng, done, unique)
    if colgen.is_dependent(col):
        return colgen.dependent_values(col, job.profile, n, rng, done, job.as_of, unique)
    return colgen.independent_values(col, n, rng, unique)


def _stage(job: _Job, col: ColumnProfile) -> int:
    """Order of generation: plain columns, then columns reading the row, then self-references."""
    ref = job.parent(col)
    if ref is not None and ref[0] == job.profile.name:
        return 2
    return 1 if ref is None and colgen.is_dependent(col) else 0


def _duplicate_rows(keys: list[np.ndarray]) -> np.ndarray:
    codes = np.stack([np.unique(k, return_inverse=True)[1].reshape(-1) for k in keys], axis=1)
    _, first = np.unique(codes, axis=0, return_index=True)
    duplicate = np.ones(len(codes), dtype=bool)
    duplicate[first] = False
    return duplicate


def _make_keys_unique(job: _Job, done: dict[str, np.ndarray]) -> None:
    """Redraw rows whose composite primary key repeats: first the last key column, then all."""
    key_columns = [job.profile.column(name) for name in job.profile.primary_key or []]
    for attempt in range(60):
        duplicate = _duplicate_rows([done[c.name] for c in key_columns])
        count = int(duplicate.sum())
        if count == 0:
            return
        redraw = key_columns[-1:] if attempt < 20 else key_columns
        subset = {name: values[duplicate] for name, values in done.items()}
        for col in redraw:
            fresh = _draw(job, col, count, job.rng(col.name, _SALT_KEY_REDRAW + attempt), subset, False)
            values = done[col.name]
            if values.dtype.kind == "U" and fresh.dtype.itemsize > values.dtype.itemsize:
                values = done[col.name] = values.astype(fresh.dtype)
            values[duplicate] = fresh
    raise ValidationFailed(
        f"无法生成 {job.rows} 个不重复的主键",
        f"cannot make {job.rows} unique primary keys",
        column=",".join(c.name for c in key_columns),
        reason="unique",
    )


def _to_arrow(job: _Job, col: ColumnProfile, values: np.ndarray) -> pa.Array:
    n = len(values)
    mask = None
    if col.null_rate > 0 and col.name not in (job.profile.primary_key or []):
        nulls = round(col.null_rate * n)
        mask = np.zeros(n, dtype=bool)
        mask[job.rng(col.name, _SALT_NULLS).choice(n, size=nulls, replace=False)] = True
    return pa.array(values, type=arrow_type(col.type), mask=mask)


def generate(
    profile: DatasetProfile,
    rows: int,
    *,
    seed: int = 0,
    related: dict[str, pa.Table] | None = None,
    as_of: dt.date = DEFAULT_AS_OF,
) -> pa.Table:
    """``rows`` synthetic rows shaped like ``profile``, marked as dummy data.

    ``related`` maps dataset names to already generated tables that foreign keys may point at.
    ``as_of`` is the day ages are counted back from when an ID number must match an age column.
    """
    if rows < 0:
        raise ValidationFailed("行数须非负", "rows must be >= 0", reason="rows")
    if rows > MAX_ROWS:
        raise TooLarge(f"一次最多生成 {MAX_ROWS} 行", f"at most {MAX_ROWS} rows at a time", reason="rows")
    schema = profile.arrow_schema()
    if rows == 0:
        return mark_dummy(schema.empty_table(), dataset=profile.name, seed=seed)
    job = _Job(profile, rows, seed, dict(related or {}), np.datetime64(as_of, "D"))
    done: dict[str, np.ndarray] = {}
    for stage in range(3):
        for col in profile.columns:
            if _stage(job, col) == stage:
                done[col.name] = _draw(job, col, rows, job.rng(col.name), done, job.is_unique(col))
    if len(profile.primary_key or []) > 1:
        _make_keys_unique(job, done)
    arrays = [_to_arrow(job, col, done[col.name]) for col in profile.columns]
    return mark_dummy(pa.Table.from_arrays(arrays, schema=schema), dataset=profile.name, seed=seed)


def generation_order(profiles: list[DatasetProfile]) -> list[DatasetProfile]:
    """Parents before children (Kahn's algorithm, stable in input order); cycles are refused."""
    by_name = {p.name: p for p in profiles}
    if len(by_name) != len(profiles):
        raise ValidationFailed("数据集名重复", "duplicate dataset names", reason="profiles")
    needs = {
        p.name: {split_foreign_key(c.foreign_key)[0] for c in p.columns if c.foreign_key is not None}
        & (by_name.keys() - {p.name})
        for p in profiles
    }
    ordered: list[DatasetProfile] = []
    placed: set[str] = set()
    while len(ordered) < len(profiles):
        ready = [p for p in profiles if p.name not in placed and needs[p.name] <= placed]
        if not ready:
            stuck = sorted(by_name.keys() - placed)
            raise ValidationFailed(
                f"外键构成循环：{stuck}", f"foreign keys form a cycle: {stuck}", reason="foreign_key"
            )
        ordered.extend(ready)
        placed.update(p.name for p in ready)
    return ordered


def generate_related(
    profiles: list[DatasetProfile],
    rows: dict[str, int],
    *,
    seed: int = 0,
    as_of: dt.date = DEFAULT_AS_OF,
) -> dict[str, pa.Table]:
    """Generate several datasets so that their foreign keys join; ``rows`` defaults to the hint."""
    tables: dict[str, pa.Table] = {}
    for profile in generation_order(profiles):
        count = rows.get(profile.name, profile.row_count_hint)
        tables[profile.name] = generate(profile, count, seed=seed, related=tables, as_of=as_of)
    return tables
