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

from countylab.dummy import coherence
from countylab.dummy import columns as colgen
from countylab.dummy.keys import unique_key_rows
from countylab.dummy.output import mark_dummy
from countylab.dummy.profile import (
    ColumnProfile,
    DatasetProfile,
    arrow_type,
    parse_bound,
    parse_category,
    split_foreign_key,
)
from countylab.errors import TooLarge, ValidationFailed

MAX_ROWS = 10_000_000
DEFAULT_AS_OF = dt.date(2025, 1, 1)  # fixed, so ages → birth dates do not drift with the clock
_SALT_NULLS = 1
_SALT_KEY_REDRAW = 100
_SALT_PATCH = 200


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
    ref = job.parent(col)
    if ref is not None and ref[0] != job.profile.name:
        places = coherence.seats(job.related[ref[0]], ref[1])
        if places is not None and len(places):
            # a household of 3 gets 3 members: seats are taken without replacement while they last
            taken = rng.permutation(places)[:n].astype(pool.dtype)
            extra = pool[rng.integers(0, len(pool), n - len(taken))]
            return np.concatenate([taken, extra]) if len(extra) else taken
    return pool[rng.integers(0, len(pool), n)]


def _derived(
    job: _Job, col: ColumnProfile, n: int, rng: np.random.Generator, done: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Values taken from other columns of the row (or the parent row), and a mask of misses."""
    profile = job.profile
    if col.follows is not None and col.follows in done:
        hit = coherence.parent_lookup(col, profile.column(col.follows), done[col.follows], job.related)
        if hit is not None:
            return hit
    if col.label_of is not None and col.label_of in done:
        labels = profile.column(col.label_of).labels or {}
        return coherence.relabel(done[col.label_of], labels), np.zeros(n, dtype=bool)
    if col.determined_by is not None and col.mapping is not None and col.determined_by in done:
        values, missing = coherence.mapped(done[col.determined_by], col.mapping)
        if col.type != "string":
            parsed = [parse_category(col.type, v) if v else parse_category(col.type, "0") for v in values]
            values = np.array(parsed)
        return values, missing
    return None


def _plain(
    job: _Job, col: ColumnProfile, n: int, rng: np.random.Generator, done: dict[str, np.ndarray], unique: bool
) -> np.ndarray:
    profile = job.profile
    if job.parent(col) is not None:
        return _foreign_values(job, col, n, rng, done, unique)
    birth = coherence.birth_column(profile)
    age = coherence.age_column(profile)
    if birth is not None and col.name == birth.name and age is not None and age.name in done:
        births = coherence.births_from_ages(done[age.name], job.as_of, rng, birth)
        # a birth date clipped into its approved range moves the age with it: they always agree
        done[age.name] = coherence.exact_age(births, job.as_of).astype(done[age.name].dtype)
        return births
    if age is not None and col.name == age.name and birth is not None and birth.name in done:
        years = coherence.exact_age(done[birth.name], job.as_of)
        return years.astype(np.int64 if col.type == "int64" else np.float64)
    if col.weights_by_age is not None and col.categories and not unique:
        ages = coherence.ages_of_rows(profile, done, job.as_of)
        if ages is not None:
            return coherence.by_age(col, ages, rng, colgen.category_choices(col))
    if colgen.is_dependent(col):
        return colgen.dependent_values(col, profile, n, rng, done, job.as_of, unique)
    values = colgen.independent_values(col, n, rng, unique)
    if col.mean_by_age is not None and not unique:
        ages = coherence.ages_of_rows(profile, done, job.as_of)
        if ages is not None and len(ages) == n:
            values = coherence.scaled_by_age(col, values, ages)
    return values


def _draw(
    job: _Job, col: ColumnProfile, n: int, rng: np.random.Generator, done: dict[str, np.ndarray], unique: bool
) -> np.ndarray:
    derived = None if unique else _derived(job, col, n, rng, done)
    if derived is None:
        values = _plain(job, col, n, rng, done, unique)
    else:
        values, missing = derived
        if missing.any():
            subset = {name: v[missing] for name, v in done.items() if len(v) == n}
            fill = _plain(job, col, int(missing.sum()), rng, subset, False)
            if (
                values.dtype.kind == "U"
                and fill.dtype.kind == "U"
                and fill.dtype.itemsize > values.dtype.itemsize
            ):
                values = values.astype(fill.dtype)
            values = values.copy()
            values[missing] = fill
    if col.type in ("date", "timestamp") and col.maximum is None and not unique:
        # no approved upper bound: still no registration after "today"
        unit = "D" if col.type == "date" else "us"
        values = np.minimum(
            values.astype(f"datetime64[{unit}]"), (job.as_of + 1).astype(f"datetime64[{unit}]") - 1
        )
    if col.after is not None and col.after in done and col.type in ("date", "timestamp"):
        values = coherence.not_before(values, done[col.after], rng, col)
    if col.scale is not None and col.type == "float64":
        values = np.round(values.astype(np.float64), col.scale)
    # rows sharing the key share the value; a column that follows a parent row is constant per
    # foreign key too, so a preview without the parent still shows one village per household
    group = col.follows or col.constant_per
    if group is not None and group in done and len(done[group]) == n and not unique:
        _, first, inverse = np.unique(done[group], return_index=True, return_inverse=True)
        values = values[first[inverse.reshape(-1)]]
    return values


def _needs(job: _Job, col: ColumnProfile) -> list[str]:
    """Columns that must be drawn before ``col`` (their values shape its values)."""
    profile = job.profile
    refs = (col.follows, col.label_of, col.determined_by, col.after, col.constant_per)
    needs = [r for r in refs if r is not None]
    ref = job.parent(col)
    if ref is not None and ref[0] == profile.name:
        needs.append(ref[1])
    birth, age = coherence.birth_column(profile), coherence.age_column(profile)
    if birth is not None and age is not None and col.name == birth.name:
        needs.append(age.name)
    if col.weights_by_age is not None or col.mean_by_age is not None:
        needs.extend(c.name for c in (age, birth) if c is not None)
    if colgen.is_dependent(col):
        needs.extend(c.name for c in profile.columns if c.name != col.name and colgen.feeds_dependent(c, col))
    return [name for name in needs if name != col.name]


def _order(job: _Job, first: list[str]) -> list[ColumnProfile]:
    """Columns in an order where each comes after what it needs (a cycle is cut where met)."""
    by_name = {c.name: c for c in job.profile.columns}
    placed: set[str] = set(first)
    visiting: set[str] = set()
    ordered: list[ColumnProfile] = []

    def visit(name: str) -> None:
        if name in placed or name in visiting or name not in by_name:
            return
        visiting.add(name)
        for need in _needs(job, by_name[name]):
            visit(need)
        visiting.discard(name)
        placed.add(name)
        ordered.append(by_name[name])

    for col in job.profile.columns:
        visit(col.name)
    return ordered


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


def capacity(profile: DatasetProfile) -> int:
    """Most rows the profile can have: a dataset keyed by the 12 public town codes has 12 rows.

    Only key columns with a closed category list bound it; a table asked for more rows than
    its keys allow is generated whole (every key once) rather than refused or padded with
    codes that do not exist in the county."""
    keys = list(profile.primary_key or []) or [c.name for c in profile.columns if c.unique][:1]
    if not keys:
        return MAX_ROWS
    total = 1
    for name in keys:
        size = _key_space(profile.column(name))
        if size is None:
            return MAX_ROWS
        total = min(total * size, MAX_ROWS)
    return total


def _key_space(col: ColumnProfile) -> int | None:
    """How many distinct values a key column can take, when its approved metadata bounds it."""
    if col.foreign_key is not None:
        return None
    if col.categories:
        return len(set(col.categories))
    if col.minimum is None or col.maximum is None or col.semantic in ("key", "privacy_unit_id"):
        return None
    low, high = parse_bound(col.type, col.minimum), parse_bound(col.type, col.maximum)
    if col.type == "timestamp" and col.step_seconds:  # hourly readings: hours in the approved range
        step = col.step_seconds
        return int(high // step - (-(-low // step))) + 1
    return None  # an integer or date key with too narrow a range is refused, not cut short


def generate(
    profile: DatasetProfile,
    rows: int,
    *,
    seed: int = 0,
    related: dict[str, pa.Table] | None = None,
    as_of: dt.date | None = None,
) -> pa.Table:
    """``rows`` synthetic rows shaped like ``profile``, marked as dummy data.

    ``related`` maps dataset names to already generated tables that foreign keys may point at.
    ``as_of`` is "today" for the rows: ages are counted to it and no birth date follows it; by
    default the profile's own ``as_of`` (the day it was proposed), else ``DEFAULT_AS_OF``.
    """
    if rows < 0:
        raise ValidationFailed("行数须非负", "rows must be >= 0", reason="rows")
    if rows > MAX_ROWS:
        raise TooLarge(f"一次最多生成 {MAX_ROWS} 行", f"at most {MAX_ROWS} rows at a time", reason="rows")
    schema = profile.arrow_schema()
    rows = min(rows, capacity(profile))
    if rows == 0:
        return mark_dummy(schema.empty_table(), dataset=profile.name, seed=seed)
    day = as_of if as_of is not None else (profile.as_of or DEFAULT_AS_OF)
    job = _Job(profile, rows, seed, dict(related or {}), np.datetime64(day, "D"))
    done: dict[str, np.ndarray] = {}
    composite = len(profile.primary_key or []) > 1
    if composite:
        done.update(unique_key_rows(job, _draw))
    for col in _order(job, list(done)):
        done[col.name] = _draw(job, col, rows, job.rng(col.name), done, job.is_unique(col))
    if composite:
        _make_keys_unique(job, done)
    arrays = [_to_arrow(job, col, done[col.name]) for col in profile.columns]
    return mark_dummy(pa.Table.from_arrays(arrays, schema=schema), dataset=profile.name, seed=seed)


def _needs_of(profiles: list[DatasetProfile]) -> dict[str, set[str]]:
    names = {p.name for p in profiles}
    return {
        p.name: {split_foreign_key(c.foreign_key)[0] for c in p.columns if c.foreign_key is not None}
        & (names - {p.name})
        for p in profiles
    }


def generation_order(profiles: list[DatasetProfile]) -> list[DatasetProfile]:
    """Parents before children (Kahn's algorithm, stable in input order); cycles are refused."""
    order, deferred = _plan(profiles)
    if deferred:
        stuck = sorted({name for name, _ in deferred})
        raise ValidationFailed(
            f"外键构成循环：{stuck}", f"foreign keys form a cycle: {stuck}", reason="foreign_key"
        )
    return order


def _plan(profiles: list[DatasetProfile]) -> tuple[list[DatasetProfile], list[tuple[str, str]]]:
    """Parents first; a cycle (a household names its head resident, a resident their household)
    is cut at the dataset most others wait for, and the cut edges are returned to be patched."""
    by_name = {p.name: p for p in profiles}
    if len(by_name) != len(profiles):
        raise ValidationFailed("数据集名重复", "duplicate dataset names", reason="profiles")
    needs = _needs_of(profiles)
    ordered: list[DatasetProfile] = []
    placed: set[str] = set()
    deferred: list[tuple[str, str]] = []
    while len(ordered) < len(profiles):
        ready = [p for p in profiles if p.name not in placed and needs[p.name] <= placed]
        if not ready:
            stuck = [p for p in profiles if p.name not in placed]
            waiting = {p.name: sum(p.name in needs[q.name] for q in stuck) for p in stuck}
            cut = max(stuck, key=lambda p: (waiting[p.name], -len(needs[p.name] - placed)))
            deferred.extend((cut.name, parent) for parent in sorted(needs[cut.name] - placed))
            ready = [cut]
        ordered.extend(ready)
        placed.update(p.name for p in ready)
    return ordered, deferred


def _seat_count(profile: DatasetProfile, tables: dict[str, pa.Table]) -> int | None:
    """Rows that fill every seat of the parent (all members of every household), if it says."""
    for col in profile.columns:
        if col.foreign_key is None:
            continue
        dataset, key = split_foreign_key(col.foreign_key)
        if dataset in tables and dataset != profile.name:
            places = coherence.seats(tables[dataset], key)
            if places is not None:
                return len(places)
    return None


def _patch_foreign(
    table: pa.Table, profile: DatasetProfile, parent: DatasetProfile, parent_table: pa.Table, seed: int
) -> pa.Table:
    """Redraw the foreign keys that pointed at a dataset generated later (a cut cycle).

    Where the parent points back (a resident names their household), the key is taken from the
    parent rows that point at this row: a household's head is one of its own members."""
    for i, col in enumerate(profile.columns):
        if col.foreign_key is None or split_foreign_key(col.foreign_key)[0] != parent.name:
            continue
        column = split_foreign_key(col.foreign_key)[1]
        if column not in parent_table.column_names or parent_table.num_rows == 0:
            continue
        rng = colgen.column_rng(seed, profile.name, col.name, _SALT_PATCH)
        values = _back_pointing(table, profile, parent, parent_table, column, rng)
        if values is None:
            continue
        old = table.column(i)
        patched = pc.if_else(pc.is_null(old), pa.scalar(None, values.type), values).cast(old.type)
        table = table.set_column(i, table.schema.field(i), patched)
    return table


def _back_pointing(
    table: pa.Table,
    profile: DatasetProfile,
    parent: DatasetProfile,
    parent_table: pa.Table,
    column: str,
    rng: np.random.Generator,
) -> pa.Array | None:
    pool = pc.drop_null(parent_table.column(column))
    if len(pool) == 0:
        return None
    values = pool.take(pa.array(rng.integers(0, len(pool), table.num_rows)))
    own_keys = profile.primary_key or []
    back = next(
        (
            c.name
            for c in parent.columns
            if len(own_keys) == 1 and c.foreign_key == f"{profile.name}.{own_keys[0]}"
        ),
        None,
    )
    if back is None:
        return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    order = rng.permutation(parent_table.num_rows)
    shuffled = parent_table.take(pa.array(order))
    pointers = pc.cast(shuffled.column(back), table.schema.field(own_keys[0]).type)
    first = pc.index_in(table.column(own_keys[0]), value_set=pointers)
    chosen = shuffled.column(column).take(pc.fill_null(first, 0))
    chosen = pc.if_else(pc.is_null(first), values, chosen)
    return chosen.combine_chunks() if isinstance(chosen, pa.ChunkedArray) else chosen


def generate_related(
    profiles: list[DatasetProfile],
    rows: dict[str, int],
    *,
    seed: int = 0,
    as_of: dt.date | None = None,
) -> dict[str, pa.Table]:
    """Generate several datasets so that their foreign keys join; ``rows`` defaults to the hint."""
    order, deferred = _plan(profiles)
    tables: dict[str, pa.Table] = {}
    for profile in order:
        count = rows.get(profile.name, _seat_count(profile, tables) or profile.row_count_hint)
        tables[profile.name] = generate(profile, count, seed=seed, related=tables, as_of=as_of)
    by_name = {p.name: p for p in profiles}
    for child, parent in deferred:
        tables[child] = _patch_foreign(tables[child], by_name[child], by_name[parent], tables[parent], seed)
    return tables
