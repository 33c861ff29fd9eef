"""Propose a :class:`DatasetProfile` from real data, for a steward to review and approve.

This is the one place that reads real rows on behalf of dummy data, so it decides what may
leave them: a sensitive column contributes only its type, semantic and null rate — never a
value, bound or mean. A non-sensitive column may contribute its range and mean, and a category
list when the values come from a public key set (a published code list) or are few; observed
values occurring fewer than ``MIN_CATEGORY_COUNT`` times are dropped (the same threshold as the
SDC rule for aggregates), so a rare value — one household's unusual village — is never exposed.
Data are read batch by batch, so a large dataset version need not fit in memory.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from countylab.dummy import relations
from countylab.dummy.profile import MAX_SCALE, ColumnProfile, DatasetProfile
from countylab.errors import ValidationFailed

MIN_CATEGORY_COUNT = 10
MAX_SMALL_CATEGORIES = 50
_COUNTED_TYPES = ("string", "int64", "date")
RELATION_ROWS = 200_000
#: a key-set value below the minimum count still gets this share of an even split, so every
#: published code appears in dummy data with a plausible (never a revealing) weight
KEY_SET_FLOOR = 0.25
_KEY_PATTERN = r"^(?P<p>[A-Za-z]{0,4})(?P<d>\d{1,20})$"
# County-level prefix of an address: up to the first 县/旗, else 区, else 市 (浙江省青禾县, 某某市某某区).
_COUNTY_PATTERNS = (r"^(?P<c>.{1,12}?[县旗])", r"^(?P<c>.{1,12}?区)", r"^(?P<c>.{1,8}?市)")
_STRUCTURE_SEMANTICS = frozenset(
    {"key", "privacy_unit_id", "foreign_key", "id_number", "address", "org_name"}
)


@dataclass(frozen=True)
class KeySetInfo:
    """A public key set as profiling sees it: its codes and their display names."""

    values: list[str]
    labels: dict[str, str] = field(default_factory=dict)


def profile_type(arrow: pa.DataType) -> str:
    """The profile type name for an Arrow type (decimals become float64, unknowns string)."""
    if pa.types.is_dictionary(arrow):
        return profile_type(arrow.value_type)
    if pa.types.is_boolean(arrow):
        return "bool"
    if pa.types.is_integer(arrow):
        return "int64"
    if pa.types.is_floating(arrow) or pa.types.is_decimal(arrow):
        return "float64"
    if pa.types.is_date(arrow):
        return "date"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    return "string"


@dataclass
class _Tally:
    """Running statistics of one column across batches."""

    type: str
    sensitive: bool
    key_set: list[str] | None
    semantic: str | None = None
    rows: int = 0
    nulls: int = 0
    low: Any = None
    high: Any = None
    total: float = 0.0
    counted: int = 0
    counts: dict[str, int] | None = None
    scale: int | None = None
    scale_known: bool = True
    step: int = 0
    seen_step: bool = False
    shapes: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if not self.sensitive and self.type in _COUNTED_TYPES:
            self.counts = {}

    def add(self, array: pa.Array | pa.ChunkedArray) -> None:
        self.rows += len(array)
        self.nulls += array.null_count
        if self.type == "string" and self.semantic in _STRUCTURE_SEMANTICS:
            self._add_shapes(array)
        if self.sensitive:
            return  # beyond its shape, nothing about the values of a sensitive column is looked at
        if self.type == "float64":
            self._add_scale(array)
        if self.type == "timestamp":
            self._add_step(array)
        if self.type in ("int64", "float64", "date", "timestamp", "bool") and len(array) > array.null_count:
            self._add_range(array)
        if self.counts is not None:
            self._add_counts(array)

    def _add_shapes(self, array: pa.Array | pa.ChunkedArray) -> None:
        """Count value *shapes*, not values: a key's prefix and width, an ID number's 6-digit
        region code, an address's county. Only a shape shared by ``MIN_CATEGORY_COUNT`` rows
        is ever proposed (a county's area code is public; one migrant's home region is not)."""
        values = pc.drop_null(array)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if self.semantic == "id_number":
            shapes = pc.utf8_slice_codeunits(values, 0, 6)
        elif self.semantic in ("address", "org_name"):
            shapes = _counties(values)
        else:
            parts = pc.extract_regex(values, _KEY_PATTERN)
            widths = pc.cast(pc.utf8_length(parts.field("d")), pa.string())
            shapes = pc.binary_join_element_wise(parts.field("p"), widths, "#")
        pairs = pc.value_counts(pc.drop_null(shapes))
        for shape, count in zip(
            pairs.field("values").to_pylist(), pairs.field("counts").to_pylist(), strict=True
        ):
            self.shapes[shape] += int(count)

    def _add_scale(self, array: pa.Array | pa.ChunkedArray) -> None:
        """The fewest decimal places that hold every value (money: 2), up to ``MAX_SCALE``."""
        if pa.types.is_decimal(array.type):
            self.scale = max(self.scale or 0, min(array.type.scale, MAX_SCALE))
            return
        values = np.asarray(pc.drop_null(pc.cast(array, pa.float64())).to_numpy(zero_copy_only=False))
        values = values[np.isfinite(values)]
        if not len(values) or not self.scale_known:
            return
        for places in range(MAX_SCALE + 1):
            scaled = values * 10.0**places
            if np.all(np.abs(scaled - np.rint(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled))):
                self.scale = max(self.scale or 0, places)
                return
        self.scale_known = False

    def _add_step(self, array: pa.Array | pa.ChunkedArray) -> None:
        """The coarsest clock the timestamps keep (hourly readings: 3600 s), up to a day."""
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[array.type.unit]
        ticks = pc.cast(pc.drop_null(array), pa.int64())
        values = np.asarray(ticks.to_numpy(zero_copy_only=False), dtype=np.int64)
        if not len(values):
            return
        step = int(np.gcd.reduce(values))
        whole = step // per_second if step % per_second == 0 else 0  # sub-second clocks: no step
        if not self.seen_step:
            self.step = whole
        else:  # 0 (no whole-second clock) in any batch means no step at all
            self.step = int(np.gcd(whole, self.step)) if whole and self.step else 0
        self.seen_step = True

    def shape(self) -> str | None:
        """The dominant shape, when it covers most rows and at least the minimum count."""
        if not self.shapes:
            return None
        shape, count = self.shapes.most_common(1)[0]
        if count < MIN_CATEGORY_COUNT or count < 0.5 * max(1, self.rows - self.nulls):
            return None
        return shape

    def _add_range(self, array: pa.Array | pa.ChunkedArray) -> None:
        if self.type == "bool":
            self.total += float(pc.sum(pc.cast(array, pa.int64())).as_py() or 0)
            self.counted += len(array) - array.null_count
            return
        bounds = pc.min_max(array)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)
        if self.type in ("int64", "float64"):
            self.total += float(pc.sum(pc.cast(array, pa.float64())).as_py() or 0.0)
            self.counted += len(array) - array.null_count

    def _add_counts(self, array: pa.Array | pa.ChunkedArray) -> None:
        assert self.counts is not None
        pairs = pc.value_counts(pc.drop_null(array))
        allowed = set(self.key_set) if self.key_set is not None else None
        values, counts = pairs.field("values").to_pylist(), pairs.field("counts").to_pylist()
        for value, count in zip(values, counts, strict=True):
            label = _label(value)
            if allowed is not None and label not in allowed:
                continue  # only published key-set values are counted; the rest never leave
            self.counts[label] = self.counts.get(label, 0) + int(count)
        if allowed is None and len(self.counts) > MAX_SMALL_CATEGORIES:
            self.counts = None  # too many distinct values: not a category column

    def _structure(self) -> dict[str, Any]:
        shape = self.shape()
        if shape is None:
            return {}
        if self.semantic in ("id_number", "address", "org_name"):
            return {"id_prefix": shape}
        prefix, _, width = shape.partition("#")
        return {"id_prefix": prefix or None, "key_width": int(width)}

    def column(self, name: str, semantic: str | None, unique: bool) -> ColumnProfile:
        null_rate = round(self.nulls / self.rows, 4) if self.rows else 0.0
        if self.sensitive:
            return ColumnProfile(
                name=name,
                type=self.type,
                semantic=semantic,
                null_rate=null_rate,
                unique=unique,
                **self._structure(),
            )
        categories, weights = self._categories()
        minimum: float | str | None = None
        maximum: float | str | None = None
        mean = None
        # A column with few distinct values is described by its frequent values only: its extremes
        # or its mean (with the weights) could otherwise give away a rare value that was dropped.
        if self.counts is None and self.low is not None:
            if self.type in ("date", "timestamp"):
                minimum, maximum = _iso(self.low), _iso(self.high)
            else:
                minimum, maximum = float(self.low), float(self.high)
        if self.counted and self.counts is None:
            mean = self.total / self.counted
        if semantic is None and categories is not None:
            semantic = "category"
        return ColumnProfile(
            name=name,
            type=self.type,
            semantic=semantic,
            null_rate=null_rate,
            minimum=minimum,
            maximum=maximum,
            mean=mean,
            categories=categories,
            category_weights=weights,
            unique=unique,
            scale=self.scale if self.scale_known else None,
            step_seconds=min(self.step, 86_400)
            if self.step >= 60 and 86_400 % min(self.step, 86_400) == 0
            else None,
            **self._structure(),
        )

    def _categories(self) -> tuple[list[str] | None, list[float] | None]:
        counts = self.counts or {}
        if self.key_set is not None:
            # The published list in full; counts below the threshold all read as a fixed stand-in,
            # so a weight tells only "fewer than MIN_CATEGORY_COUNT", never how many.
            raw = [
                counts.get(v, 0) if counts.get(v, 0) >= MIN_CATEGORY_COUNT else MIN_CATEGORY_COUNT / 2
                for v in self.key_set
            ]
            shares = _fractions(raw)
            floor = KEY_SET_FLOOR / len(shares)
            return list(self.key_set), _fractions([max(w, floor) for w in shares])
        if self.counts is None:
            return None, None
        kept = [v for v, c in counts.items() if c >= MIN_CATEGORY_COUNT]
        kept.sort(key=lambda v: (-counts[v], v))
        if not kept:
            return None, None
        return kept, _fractions([float(counts[v]) for v in kept])


def _counties(values: pa.Array) -> pa.Array:
    """The county-level prefix of each address (null where none), first pattern that matches."""
    result = pa.nulls(len(values), pa.string())
    for pattern in _COUNTY_PATTERNS:
        found = pc.extract_regex(values, pattern).field("c")
        result = pc.coalesce(result, found)
    return result


def _label(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _iso(value: object) -> str:
    """ISO text of a date or timestamp; aware timestamps become naive UTC, as generated ones are."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return str(value.isoformat()) if hasattr(value, "isoformat") else str(value)


def _fractions(raw: list[float]) -> list[float]:
    total = sum(raw)
    return [round(r / total, 6) for r in raw] if total else [1.0 for _ in raw]


def profile_from_table(
    table_or_batches: pa.Table | Iterable[pa.RecordBatch],
    *,
    semantics: dict[str, str],
    public_key_sets: dict[str, list[str]],
    sensitive_columns: set[str],
    name: str = "dataset",
    primary_key: list[str] | None = None,
    key_set_labels: dict[str, dict[str, str]] | None = None,
    catalog_key_sets: list[KeySetInfo] | None = None,
    as_of: dt.date | None = None,
) -> DatasetProfile:
    """A *proposed* profile: the steward reviews it before dummy data is generated from it.

    ``semantics`` maps column names to semantics (from the catalog's PII tags);
    ``public_key_sets`` maps column names to published code lists backing them, and
    ``key_set_labels`` to those lists' display names; ``catalog_key_sets`` are all the county's
    public key sets, so a column of town names that nobody linked is still recognised;
    ``sensitive_columns`` are the columns whose values must not shape the profile;
    ``as_of`` is "today" of the data (ages are counted to it), by default the current day.
    """
    batches: Iterable[pa.RecordBatch | pa.Table]
    if isinstance(table_or_batches, pa.Table):
        schema = table_or_batches.schema
        batches = [table_or_batches]
    else:
        iterator = iter(table_or_batches)
        first = next(iterator, None)
        if first is None:
            raise ValidationFailed("没有可分析的数据批次", "no record batches to profile", reason="empty")
        schema = first.schema
        batches = _chain(first, iterator)
    tallies = {
        f.name: _Tally(
            type=profile_type(f.type),
            sensitive=f.name in sensitive_columns,
            key_set=[str(v) for v in public_key_sets[f.name]] if f.name in public_key_sets else None,
            semantic=semantics.get(f.name),
        )
        for f in schema
    }
    kept: list[pa.RecordBatch] = []
    kept_rows = 0
    for batch in batches:
        if kept_rows < RELATION_ROWS:  # relations are read from the first rows only
            parts = batch.to_batches() if isinstance(batch, pa.Table) else [batch]
            kept.extend(parts)
            kept_rows += batch.num_rows
        for column_name, tally in tallies.items():
            tally.add(batch.column(column_name))
    rows = next(iter(tallies.values())).rows if tallies else 0
    single_key = primary_key[0] if primary_key and len(primary_key) == 1 else None
    columns = [
        tally.column(column_name, semantics.get(column_name), unique=column_name == single_key)
        for column_name, tally in tallies.items()
    ]
    day = as_of or dt.datetime.now(dt.UTC).date()
    profile = DatasetProfile(
        name=name, columns=columns, row_count_hint=rows, primary_key=primary_key, as_of=day.isoformat()
    )
    sample = pa.Table.from_batches(kept, schema=schema) if kept else None
    return relations.relate(
        profile,
        sample,
        sensitive=sensitive_columns,
        labels={c: dict(v) for c, v in (key_set_labels or {}).items()},
        catalog=[(ks.values, ks.labels) for ks in catalog_key_sets or []],
        min_count=MIN_CATEGORY_COUNT,
        public=set(public_key_sets),
    )


def _chain(first: pa.RecordBatch, rest: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
    yield first
    yield from rest
