"""Values for one column of dummy data, from its :class:`ColumnProfile` alone.

Columns come out as NumPy arrays in the dtype their Arrow type is built from (``int64``,
``float64``, ``bool``, ``datetime64[D]``/``[us]``, unicode); nulls are laid on afterwards by the
caller, so that columns which other columns depend on (a birth date inside an ID number, the
village inside an address) are complete when read.

Precedence: a category list beats the semantic (the steward's list is the truth about allowed
values), the semantic beats the bare type (an ``id_number`` string is not random text).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from countylab.dummy import fakes
from countylab.dummy.coherence import AGE_NAMES as _AGE_NAMES
from countylab.dummy.coherence import BIRTH_HINTS as _BIRTH_HINTS
from countylab.dummy.coherence import relabel
from countylab.dummy.profile import ColumnProfile, DatasetProfile, parse_bound, parse_category
from countylab.errors import ValidationFailed

Values = np.ndarray
# Longest suffix first, so "东风社区" is a community (社区), not a district (区).
_PLACE_RANKS = (
    ("居委会", 4),
    ("街道", 3),
    ("社区", 4),
    ("省", 0),
    ("市", 1),
    ("州", 1),
    ("县", 2),
    ("区", 2),
    ("旗", 2),
    ("镇", 3),
    ("乡", 3),
    ("村", 4),
)
_SEX_NAMES = frozenset({"sex", "gender", "性别", "xb"})
_MALE = frozenset({"男", "m", "male", "1"})
_FEMALE = frozenset({"女", "f", "female", "2"})
_DEFAULT_DATES = ("2015-01-01", "2024-12-31T23:59:59")
_COVERAGE_FACTOR = 4
# Free-text columns by name: only these get bland remarks; other text gets neutral placeholders.
_REMARK_HINTS = ("备注", "说明", "情况", "意见", "描述", "摘要", "内容", "note", "remark", "comment", "memo")


def column_rng(seed: int, dataset: str, column: str, salt: int = 0) -> np.random.Generator:
    """One independent stream per (seed, dataset, column): adding a column changes no other."""
    entropy = [seed & 0xFFFF_FFFF_FFFF_FFFF, zlib.crc32(dataset.encode()), zlib.crc32(column.encode()), salt]
    return np.random.default_rng(entropy)


def cannot_make_unique(col: ColumnProfile, n: int, zh: str, en: str) -> ValidationFailed:
    return ValidationFailed(
        f"列 {col.name} 无法生成 {n} 个不重复的值：{zh}",
        f"column {col.name}: cannot make {n} unique values: {en}",
        column=col.name,
        reason="unique",
    )


def make_unique(values: Values, regenerate: Callable[[int], Values], col: ColumnProfile) -> Values:
    """Redraw duplicates until every value is distinct (the value spaces are huge, so this ends fast)."""
    for _ in range(50):
        _, first = np.unique(values, return_index=True)
        if len(first) == len(values):
            return values
        duplicate = np.ones(len(values), dtype=bool)
        duplicate[first] = False
        fresh = regenerate(int(duplicate.sum()))
        if values.dtype.kind == "U" and fresh.dtype.itemsize > values.dtype.itemsize:
            values = values.astype(fresh.dtype)
        values[duplicate] = fresh
    raise cannot_make_unique(col, len(values), "取值空间太小", "the value space is too small")


def category_choices(col: ColumnProfile) -> Values:
    """The approved categories as values of the column's type."""
    labels = col.categories or []
    if col.type == "string":
        return np.array(labels, dtype=str)
    return np.array([parse_category(col.type, str(v)) for v in labels])


def category_values(col: ColumnProfile, n: int, rng: np.random.Generator, unique: bool) -> Values:
    """Draws by the approved weights; with enough rows every approved category appears.

    Every category on an approved list is real (a public code, or a value seen at least
    ``MIN_CATEGORY_COUNT`` times), so code that groups by town meets all twelve towns on dummy
    data as on real data, not the three that a skewed weight happens to favour.
    """
    choices = category_choices(col)
    if unique:
        if n > len(choices):
            raise cannot_make_unique(col, n, "类别数不足", "not enough categories")
        return rng.permutation(choices)[:n]
    weights = np.asarray(col.category_weights if col.category_weights else np.ones(len(choices)), float)
    values = rng.choice(choices, size=n, p=weights / weights.sum())
    if n >= _COVERAGE_FACTOR * len(choices):
        values[rng.choice(n, size=len(choices), replace=False)] = choices
    return values


def _numeric_bounds(col: ColumnProfile, unique_count: int) -> tuple[float, float, float | None]:
    lo = parse_bound(col.type, col.minimum) if col.minimum is not None else None
    hi = parse_bound(col.type, col.maximum) if col.maximum is not None else None
    mean = col.mean
    default_span = max(1000.0, 10.0 * unique_count)
    if lo is None and hi is None:
        if mean is None:
            lo, hi = 0.0, default_span
        else:  # symmetric around the mean, but never negative for a non-negative mean
            half = max(abs(mean), 1.0)
            lo, hi = (max(mean - half, 0.0) if mean >= 0 else mean - half), mean + half
    elif lo is None:
        assert hi is not None
        lo = 2 * mean - hi if mean is not None and mean < hi else hi - default_span
    elif hi is None:
        hi = 2 * mean - lo if mean is not None and mean > lo else lo + default_span
    return lo, hi, mean


def numeric_values(col: ColumnProfile, n: int, rng: np.random.Generator, unique: bool) -> Values:
    """Numbers in [minimum, maximum] shaped by ``distribution`` around ``mean``."""
    lo, hi, mean = _numeric_bounds(col, n if unique else 0)
    is_int = col.type == "int64"
    if is_int:
        lo_i, hi_i = int(np.ceil(lo)), int(np.floor(hi))
        if lo_i > hi_i:
            lo_i = hi_i = round(lo)
        if unique:
            size = hi_i - lo_i + 1
            if size < n:
                raise cannot_make_unique(col, n, "取值范围太窄", "the range is too narrow")
            return rng.choice(size, size=n, replace=False).astype(np.int64) + lo_i
    mean = min(max(mean, lo), hi) if mean is not None else None
    shape = col.distribution
    if shape is None:
        skewed = mean is not None and lo >= 0 and (mean - lo) < 0.35 * (hi - lo)
        shape = "uniform" if mean is None else ("lognormal" if skewed else "normal")
    centre = mean if mean is not None else (lo + hi) / 2
    if shape == "normal" and hi > lo:
        raw = rng.normal(centre, (hi - lo) / 6, n)
    elif shape == "lognormal" and centre > lo:
        sigma = 0.8
        raw = lo + rng.lognormal(np.log(centre - lo) - sigma**2 / 2, sigma, n)
    else:
        raw = rng.uniform(lo, hi, n) if hi > lo else np.full(n, lo)
    raw = np.clip(raw, lo, hi)
    if is_int:
        return np.clip(np.rint(raw), lo_i, hi_i).astype(np.int64)
    values = raw.astype(np.float64)
    return make_unique(values, lambda k: rng.uniform(lo, hi, k), col) if unique else values


def temporal_values(col: ColumnProfile, n: int, rng: np.random.Generator, unique: bool) -> Values:
    """Dates (day resolution) or timestamps (second resolution) uniform within the range."""
    kind = "timestamp" if col.type == "timestamp" else "date"
    lo = parse_bound(kind, col.minimum if col.minimum is not None else _DEFAULT_DATES[0])
    hi = parse_bound(kind, col.maximum if col.maximum is not None else _DEFAULT_DATES[1])
    lo_i, hi_i = int(lo), int(hi)
    step = col.step_seconds if kind == "timestamp" and col.step_seconds else 1
    if step > 1:  # whole steps only: hourly readings stay on the hour
        lo_i, hi_i = -(-lo_i // step), max(hi_i // step, -(-lo_i // step))
    if unique:
        if hi_i - lo_i + 1 < n:
            raise cannot_make_unique(col, n, "日期范围太窄", "the date range is too narrow")
        offsets = rng.choice(hi_i - lo_i + 1, size=n, replace=False) + lo_i
    else:
        offsets = rng.integers(lo_i, hi_i + 1, size=n)
    offsets = offsets * step
    if kind == "date":
        days = offsets.astype("datetime64[D]")
        return np.datetime_as_string(days) if col.type == "string" else days
    return offsets.astype("datetime64[s]").astype("datetime64[us]")


def _key_prefix(col: ColumnProfile) -> str:
    if col.id_prefix is not None:
        return col.id_prefix
    first = col.name[:1].upper()
    return first if first.isascii() and first.isalpha() else "K"


def key_values(col: ColumnProfile, n: int, rng: np.random.Generator, unique: bool) -> Values:
    """Surrogate keys: 1..n when unique, otherwise drawn from a pool so keys repeat like events."""
    start = int(parse_bound("int64", col.minimum)) if col.minimum is not None else 1
    end = int(parse_bound("int64", col.maximum)) if col.maximum is not None else None
    if unique:
        if end is not None and end - start + 1 < n:
            raise cannot_make_unique(col, n, "键的范围太窄", "the key range is too narrow")
        numbers = np.arange(start, start + n, dtype=np.int64)
    else:
        numbers = rng.integers(start, (end if end is not None else start + max(1, n // 2) - 1) + 1, size=n)
    if col.type == "int64":
        return numbers
    width = max(col.key_width or 6, len(str(start + n)))
    return fakes.sequential_keys(_key_prefix(col), numbers, width)


_SEMANTIC_MAKERS: dict[str, Callable[[ColumnProfile, int, np.random.Generator], Values]] = {
    "mobile": lambda c, n, r: fakes.mobiles(r, n, prefix=c.id_prefix),
    "person_name": lambda c, n, r: fakes.person_names(r, n),
    "org_name": lambda c, n, r: fakes.org_names(r, n, county=c.id_prefix),
    "uscc": lambda c, n, r: fakes.uscc_codes(r, n, prefix=c.id_prefix),
    "bank_card": lambda c, n, r: fakes.bank_cards(
        r, n, prefix=c.id_prefix, length=16 if c.type == "int64" else 19
    ),
    "licence_plate": lambda c, n, r: fakes.licence_plates(r, n, prefix=c.id_prefix),
    "text": lambda c, n, r: fakes.phrases(r, n),
}


def independent_values(col: ColumnProfile, n: int, rng: np.random.Generator, unique: bool) -> Values:
    """Values of a column that needs no other column of the row."""
    if col.categories:
        return category_values(col, n, rng, unique)
    semantic = col.semantic
    if semantic in _SEMANTIC_MAKERS:
        maker = _SEMANTIC_MAKERS[semantic]
        values = maker(col, n, rng)
        if unique:
            values = make_unique(values, lambda k: maker(col, k, rng), col)
        return values.astype(np.int64) if col.type == "int64" else values
    if semantic in ("key", "privacy_unit_id", "foreign_key"):
        return key_values(col, n, rng, unique)
    if col.type in ("int64", "float64"):
        return numeric_values(col, n, rng, unique)
    if col.type in ("date", "timestamp") or semantic == "date":
        return temporal_values(col, n, rng, unique)
    if col.type == "bool":
        p = col.mean if col.mean is not None and 0.0 <= col.mean <= 1.0 else 0.5
        return rng.random(n) < p
    if semantic == "text" or any(h in col.name.lower() for h in _REMARK_HINTS):
        values = fakes.phrases(rng, n)
    else:  # no approved list: placeholders that say which column they stand for, never a phrase
        stem = "类别" if semantic == "category" else col.name
        labels = np.array([f"{stem}{i}" for i in range(1, 6)])
        values = labels[rng.integers(0, len(labels), n)]
    if unique:
        values = np.strings.add(values, np.arange(1, n + 1).astype(str))
    return values


def is_dependent(col: ColumnProfile) -> bool:
    """ID numbers and addresses read other columns of the same row, so they are made last."""
    return not col.categories and col.semantic in ("id_number", "address")


def _find(profile: DatasetProfile, test: Callable[[ColumnProfile], bool]) -> ColumnProfile | None:
    return next((c for c in profile.columns if test(c)), None)


def feeds_dependent(source: ColumnProfile, target: ColumnProfile) -> bool:
    """Whether ``target`` (an ID number or address) reads ``source`` of the same row."""
    if target.semantic == "id_number":
        name = source.name.lower()
        return name in _SEX_NAMES or name in _AGE_NAMES or any(h in name for h in _BIRTH_HINTS)
    return _place_rank(source) is not None


def _birth_dates(
    profile: DatasetProfile, done: dict[str, Values], n: int, as_of: np.datetime64, rng: np.random.Generator
) -> Values | None:
    birth = _find(profile, lambda c: c.type == "date" and any(h in c.name.lower() for h in _BIRTH_HINTS))
    if birth is not None and birth.name in done:
        return done[birth.name].astype("datetime64[D]")
    age = _find(profile, lambda c: c.type in ("int64", "float64") and c.name.lower() in _AGE_NAMES)
    if age is not None and age.name in done:
        years = np.clip(done[age.name], 0, 120)
        days = (years * 365.25 + rng.integers(1, 365, n)).astype(np.int64)
        births: np.ndarray = (as_of.astype("datetime64[D]") - days).astype("datetime64[D]")
        return births
    return None


def _sexes(profile: DatasetProfile, done: dict[str, Values]) -> Values | None:
    sex = _find(profile, lambda c: c.name.lower() in _SEX_NAMES)
    if sex is None or sex.name not in done:
        return None
    labels = np.strings.lower(done[sex.name].astype(str))
    female = np.where(np.isin(labels, list(_FEMALE)), 0, -1)
    sexes: np.ndarray = np.where(np.isin(labels, list(_MALE)), 1, female)
    return sexes


def _place_rank(col: ColumnProfile) -> int | None:
    """Administrative level of a place column (county 2, town 3, village 4) from its names.

    The names are the column's categories, or the labels of its codes (a town-code column whose
    key set names 12 towns is a town column)."""
    if col.type != "string" or not (col.categories or col.labels):
        return None
    names = list(col.labels.values()) if col.labels else list(col.categories or [])
    if not names:
        return None
    ranks = set()
    for value in names:
        rank = next((r for suffix, r in _PLACE_RANKS if value.endswith(suffix)), None)
        if rank is None:
            return None
        ranks.add(rank)
    return min(ranks)


def dependent_values(
    col: ColumnProfile,
    profile: DatasetProfile,
    n: int,
    rng: np.random.Generator,
    done: dict[str, Values],
    as_of: np.datetime64,
    unique: bool,
) -> Values:
    """ID numbers consistent with birth date/age and sex; addresses from place columns."""
    if col.semantic == "id_number":
        birth = _birth_dates(profile, done, n, as_of, rng)
        male = _sexes(profile, done)
        values = fakes.id_numbers(rng, n, birth=birth, male=male, prefix=col.id_prefix)
        if unique:  # only rows that collide are redrawn, with random birth dates
            values = make_unique(values, lambda k: fakes.id_numbers(rng, k, prefix=col.id_prefix), col)
        return values
    ranked = sorted(
        (rank, i, c)
        for i, c in enumerate(profile.columns)
        if (rank := _place_rank(c)) is not None and c.name in done
    )
    places: list[Values] = []
    seen_ranks: set[int] = set()
    for rank, _, c in ranked:
        if rank in seen_ranks:
            continue  # a town code and a town name column name the same town once
        seen_ranks.add(rank)
        values = done[c.name].astype(str)
        places.append(relabel(values, c.labels) if c.labels else values)
    values = fakes.addresses(rng, n, places, county=col.id_prefix)
    if unique:
        values = make_unique(values, lambda k: fakes.addresses(rng, k, [], county=col.id_prefix), col)
    return values
