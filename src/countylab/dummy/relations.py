"""Relations between columns, read from real rows once, kept as approvable profile fields.

What a steward approves here is structural or public: which column names the codes of another
(``label_of``), the village → town table of public codes (``determined_by``/``mapping``), how
occupation shares change with age, counted per age band with every cell under the minimum
count dropped (``weights_by_age``), which date never precedes which (``after``), which columns
repeat the row a foreign key points at (``follows``). Sensitive columns are never read here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from countylab.dummy.coherence import age_bands, age_column, birth_column, exact_age
from countylab.dummy.profile import AGE_BANDS, ColumnProfile, DatasetProfile

#: share of rows a relation must hold on before it is proposed
HOLDS = 0.99
NAME_MATCH = 0.9
_MAX_PAIRS = 2_000


def relate(
    profile: DatasetProfile,
    sample: pa.Table | None,
    *,
    sensitive: set[str],
    labels: dict[str, dict[str, str]],
    catalog: list[tuple[list[str], dict[str, str]]],
    min_count: int,
    public: set[str] | None = None,
) -> DatasetProfile:
    """``profile`` with the relations that hold in ``sample`` (the rows profiling read)."""
    columns = {c.name: c for c in profile.columns}
    for name, names in labels.items():
        if name in columns and names:
            columns[name] = replace(columns[name], labels=dict(names))
    if sample is None or sample.num_rows == 0:
        return replace(profile, columns=[columns[c.name] for c in profile.columns])
    readable = [c for c in profile.columns if c.name not in sensitive and c.name in sample.column_names]
    text = {c.name: _strings(sample, c.name) for c in readable if c.type == "string"}
    public = set(labels) | (public or set())
    _name_columns(columns, text, catalog, min_count)
    coded = dict(text)
    for c in readable:  # small integer lists and flags take part in dependencies (size 1 → 独居)
        if c.type in ("int64", "bool") and (c.categories or c.type == "bool"):
            coded[c.name] = _strings(sample, c.name)
    _mappings(columns, coded, public, min_count)
    _age_weights(profile, columns, sample, sensitive, public, min_count)
    _date_order(columns, sample, readable, min_count)
    _constant_per_key(profile, columns, sample)
    return replace(profile, columns=[columns[c.name] for c in profile.columns])


def _constant_per_key(profile: DatasetProfile, columns: dict[str, ColumnProfile], sample: pa.Table) -> None:
    """In a (plot, year) table, what never changes for a plot (its village, household, area)."""
    keys = profile.primary_key or []
    if len(keys) < 2:
        return
    for key in keys:
        if columns[key].categories or key not in sample.column_names:
            continue
        key_values = _strings(sample, key)
        groups = len(np.unique(key_values))
        if groups == 0 or len(key_values) < 1.2 * groups:
            continue
        for name, col in columns.items():
            if name in keys or col.constant_per is not None or name not in sample.column_names:
                continue
            values = _strings(sample, name)
            if _pairs(key_values, values) == groups:
                columns[name] = replace(col, constant_per=key)
        return


def _strings(sample: pa.Table, name: str) -> np.ndarray:
    array = pc.cast(sample.column(name), pa.string())
    return np.asarray(pc.fill_null(array, "").to_numpy(zero_copy_only=False)).astype(str)


def _name_columns(
    columns: dict[str, ColumnProfile],
    text: dict[str, np.ndarray],
    catalog: list[tuple[list[str], dict[str, str]]],
    min_count: int,
) -> None:
    """A text column of place names becomes the label of a code column, or takes the names list."""
    coded = {n: c for n, c in columns.items() if c.labels and n in text}
    for name, values in text.items():
        col = columns[name]
        if col.labels or col.semantic in ("key", "privacy_unit_id", "foreign_key"):
            continue
        present = values != ""
        if present.sum() < 1:
            continue
        for code_name, code_col in coded.items():
            if code_name == name:
                continue
            names = _relabel(text[code_name], code_col.labels or {})
            if np.mean(names[present] == values[present]) >= NAME_MATCH:
                columns[name] = replace(col, label_of=code_name)
                break
        else:
            for values_list, names_map in catalog:
                choice = _catalog_match(values[present], values_list, names_map)
                if choice is not None:
                    columns[name] = replace(
                        col,
                        categories=choice,
                        category_weights=_weights(values[present], choice, min_count),
                        semantic=col.semantic or "category",
                    )
                    break


def _relabel(codes: np.ndarray, labels: dict[str, str]) -> np.ndarray:
    keys, inverse = np.unique(codes, return_inverse=True)
    names = np.array([labels.get(str(k), "\x00") for k in keys], dtype=str)
    relabelled: np.ndarray = names[inverse.reshape(-1)]
    return relabelled


def _catalog_match(values: np.ndarray, codes: list[str], names: dict[str, str]) -> list[str] | None:
    """The full public list (names, else codes) that nearly all values come from."""
    for candidates in (sorted(set(names.values())), [str(c) for c in codes]):
        if candidates and np.mean(np.isin(values, candidates)) >= NAME_MATCH:
            return candidates
    return None


def _weights(values: np.ndarray, choices: list[str], min_count: int) -> list[float]:
    counts = Counter(values.tolist())
    raw = [float(counts[c]) if counts[c] >= min_count else min_count / 2 for c in choices]
    total = sum(raw)
    floor = 0.25 / len(raw)
    shares = [max(r / total, floor) for r in raw]
    return [round(s / sum(shares), 6) for s in shares]


def _mappings(
    columns: dict[str, ColumnProfile], text: dict[str, np.ndarray], public: set[str], min_count: int
) -> None:
    """Functional dependencies between category columns (village → town), as lookup tables."""
    categorical = [
        n
        for n, c in columns.items()
        if n in text
        and (c.categories or c.type == "bool")
        and c.label_of is None
        and c.type in ("string", "int64", "bool")
    ]
    distinct = {n: len(set(text[n][text[n] != ""].tolist())) for n in categorical}
    order = {n: i for i, n in enumerate(columns)}
    found: list[tuple[tuple[int, int, int], str, str, dict[str, str]]] = []
    for target in categorical:
        for source in categorical:
            if source == target or distinct[source] < distinct[target] or distinct[source] > _MAX_PAIRS:
                continue
            is_key = columns[source].semantic in ("key", "privacy_unit_id") or columns[source].unique
            if target in public and source not in public and not is_key:
                continue  # a public code list keeps all its codes; a private column cannot narrow it
            mapping = _dependency(
                text[source], text[target], columns[source], columns[target], public, min_count
            )
            if mapping is not None:
                found.append(
                    ((0 if is_key else 1, -distinct[source], order[source]), source, target, mapping)
                )
    # Key columns first, then finer columns (village before town); a value never decides its decider.
    decided_by: dict[str, str] = {}
    for _, source, target, mapping in sorted(found, key=lambda f: f[0]):
        if target in decided_by or _reaches(decided_by, source, target):
            continue
        decided_by[target] = source
        columns[target] = replace(columns[target], determined_by=source, mapping=mapping)


def _pairs(first: np.ndarray, second: np.ndarray) -> int:
    """How many distinct (first, second) pairs there are."""
    _, a = np.unique(first, return_inverse=True)
    _, b = np.unique(second, return_inverse=True)
    return len(np.unique(a.reshape(-1).astype(np.int64) * (int(b.max(initial=0)) + 1) + b.reshape(-1)))


def _reaches(decided_by: dict[str, str], start: str, goal: str) -> bool:
    """Whether ``start`` is (transitively) decided by ``goal``."""
    seen = set()
    while start in decided_by and start not in seen:
        seen.add(start)
        start = decided_by[start]
        if start == goal:
            return True
    return False


def _dependency(
    source: np.ndarray,
    target: np.ndarray,
    source_col: ColumnProfile,
    target_col: ColumnProfile,
    public: set[str],
    min_count: int,
) -> dict[str, str] | None:
    present = (source != "") & (target != "")
    if present.sum() < min_count:
        return None
    s_keys, s_codes = np.unique(source[present], return_inverse=True)
    t_keys, t_codes = np.unique(target[present], return_inverse=True)
    pair_codes = s_codes.reshape(-1).astype(np.int64) * len(t_keys) + t_codes.reshape(-1)
    cells, counts = np.unique(pair_codes, return_counts=True)
    # per source value, the most frequent target: sort by (source, -count) and keep the first
    order = np.lexsort((-counts, cells // len(t_keys)))
    cells, counts = cells[order], counts[order]
    first = np.concatenate([[True], np.diff(cells // len(t_keys)) != 0])
    if counts[first].sum() < HOLDS * present.sum():
        return None
    pairs = {
        str(s_keys[c // len(t_keys)]): (str(t_keys[c % len(t_keys)]), int(n))
        for c, n in zip(cells[first].tolist(), counts[first].tolist(), strict=True)
    }
    both_public = source_col.name in public and target_col.name in public
    allowed_source = set(source_col.categories or [])
    allowed_target = set(target_col.categories or ([] if target_col.type != "bool" else ["true", "false"]))
    mapping: dict[str, str] = {}
    for s, (t, count) in pairs.items():
        if s in allowed_source and t in allowed_target and (both_public or count >= min_count):
            mapping[s] = t
    if both_public and mapping and all(s.startswith(t) for s, t in mapping.items()):
        # hierarchical codes (village 330729109202 lies in town 330729109): the rule, not the
        # sample, decides, so villages no row mentions still map to their town
        targets = sorted(allowed_target, key=len, reverse=True)
        for s in allowed_source - mapping.keys():
            town = next((t for t in targets if s.startswith(t)), None)
            if town is not None:
                mapping[s] = town
    return mapping or None


def _age_weights(
    profile: DatasetProfile,
    columns: dict[str, ColumnProfile],
    sample: pa.Table,
    sensitive: set[str],
    public: set[str],
    min_count: int,
) -> None:
    """Category shares per age band, so no 8-year-old is retired and no 70-year-old a pupil."""
    ages = _sample_ages(profile, sample, sensitive)
    if ages is None:
        return
    known = ~np.isnan(ages)
    bands = age_bands(np.where(known, ages, 0).astype(np.int64))
    exclude = {c.name for c in (age_column(profile), birth_column(profile)) if c is not None}
    for name, col in list(columns.items()):
        if (
            name in exclude
            or name in public
            or name in sensitive
            or not col.categories
            or col.determined_by is not None
            or col.label_of is not None
            or name not in sample.column_names
        ):
            continue
        values = _strings(sample, name) if col.type != "bool" else _bools(sample, name)
        index = np.array(col.categories, dtype=str)
        position = np.searchsorted(np.sort(index), values)
        order = np.argsort(index)
        position = np.clip(position, 0, len(index) - 1)
        listed = known & (np.sort(index)[position] == values)
        table = np.zeros((len(AGE_BANDS), len(col.categories)))
        np.add.at(table, (bands[listed], order[position[listed]]), 1)
        table[table < min_count] = 0
        if (table.sum(axis=1) > 0).sum() >= 2:
            rows = [[round(float(v), 6) for v in row / max(row.sum(), 1.0)] for row in table]
            columns[name] = replace(col, weights_by_age=rows)
    for name, col in list(columns.items()):
        if (
            name in exclude
            or name in sensitive
            or col.type not in ("int64", "float64")
            or col.categories
            or col.semantic not in (None, "measure")
            or name not in sample.column_names
        ):
            continue
        values = np.asarray(pc.cast(sample.column(name), pa.float64()).to_numpy(zero_copy_only=False), float)
        usable = known & ~np.isnan(values)
        means: list[float | None] = []
        for band in range(len(AGE_BANDS)):
            rows_in_band = usable & (bands == band)
            count = int(rows_in_band.sum())
            means.append(round(float(values[rows_in_band].mean()), 4) if count >= min_count else None)
        if sum(m is not None for m in means) >= 2:
            columns[name] = replace(col, mean_by_age=means)


def _bools(sample: pa.Table, name: str) -> np.ndarray:
    values = sample.column(name).to_pylist()
    return np.array(["" if v is None else ("true" if v else "false") for v in values], dtype=str)


def _sample_ages(profile: DatasetProfile, sample: pa.Table, sensitive: set[str]) -> np.ndarray | None:
    age = age_column(profile)
    if age is not None and age.name not in sensitive and age.name in sample.column_names:
        return np.asarray(
            pc.cast(sample.column(age.name), pa.float64()).to_numpy(zero_copy_only=False), float
        )
    birth = birth_column(profile)
    if (
        birth is not None
        and birth.name not in sensitive
        and birth.name in sample.column_names
        and profile.as_of
    ):
        dates = pc.cast(sample.column(birth.name), pa.date32())
        known = np.asarray(pc.is_valid(dates).to_numpy(zero_copy_only=False))
        days = np.asarray(pc.fill_null(dates, 0).to_numpy(zero_copy_only=False)).astype("datetime64[D]")
        years = exact_age(days, np.datetime64(profile.as_of, "D")).astype(float)
        return np.where(known, years, np.nan)
    return None


def _date_order(
    columns: dict[str, ColumnProfile], sample: pa.Table, readable: list[ColumnProfile], min_count: int
) -> None:
    """``b.after = a`` when b is never before a in the rows (start → end, 登记 → 注销)."""
    dated = [c for c in readable if c.type in ("date", "timestamp")]
    numbers = {c.name: _instants(sample, c.name) for c in dated}
    for b in dated:
        best: tuple[float, str] | None = None
        for a in dated:
            if a.name == b.name or a.type != b.type:
                continue
            both = ~np.isnan(numbers[a.name]) & ~np.isnan(numbers[b.name])
            if both.sum() < min_count:
                continue
            first, second = numbers[a.name][both], numbers[b.name][both]
            if np.all(second >= first) and np.any(second > first):
                closeness = float(np.median(first))
                if best is None or closeness > best[0]:
                    best = (closeness, a.name)
        if best is not None:
            columns[b.name] = replace(columns[b.name], after=best[1])


def _instants(sample: pa.Table, name: str) -> np.ndarray:
    array = (
        pc.cast(sample.column(name), pa.int64())
        if not pa.types.is_date(sample.column(name).type)
        else pc.cast(pc.cast(sample.column(name), pa.date32()), pa.int32())
    )
    values = np.asarray(pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False), float)
    return values


def follows(
    profile: DatasetProfile, sample: pa.Table | None, foreign: list[str], sensitive: set[str]
) -> DatasetProfile:
    """Mark columns that repeat the parent row a foreign key points at (a resident's village is
    their household's village), so dummy children agree with their dummy parents."""
    if sample is None or sample.num_rows == 0:
        return profile
    keys = set(profile.primary_key or [])
    columns = {c.name: c for c in profile.columns}
    for fk in foreign:
        if fk not in sample.column_names or fk not in columns or columns[fk].foreign_key is None:
            continue
        fk_values = _strings(sample, fk)
        present = fk_values != ""
        groups = len(np.unique(fk_values[present]))
        if groups == 0 or present.sum() < 1.2 * groups:
            continue  # a key that never repeats says nothing about what depends on it
        for name, col in columns.items():
            if name == fk or name in keys or col.follows is not None or name not in sample.column_names:
                continue
            if col.foreign_key is not None and name not in sensitive:
                continue
            values = _strings(sample, name)
            both = present & (values != "")
            if both.sum() < 1.2 * groups * 0.5:
                continue
            if _pairs(fk_values[both], values[both]) == len(np.unique(fk_values[both])):
                columns[name] = replace(col, follows=fk)
    return replace(profile, columns=[columns[c.name] for c in profile.columns])
