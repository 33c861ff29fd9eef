"""Rules that keep one dummy row coherent with itself and with related datasets.

Independently drawn columns disagree: an age and a birth date drawn apart agree in 1 row of
20, a town code and a village code drawn apart name places in different towns, a resident's
village differs from the village of the household it points at. Each rule here derives a
column from columns already drawn, using only what the approved profile says (a code's label,
a village → town table of public codes, age-band weights kept above the minimum count), so
code written against dummy rows meets the same invariants on real rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from countylab.dummy.profile import AGE_BANDS, ColumnProfile, DatasetProfile, arrow_type, split_foreign_key

Values = np.ndarray
BIRTH_HINTS = ("birth", "出生", "dob", "csrq")
AGE_NAMES = frozenset({"age", "年龄", "nl", "age_years", "周岁"})
#: a parent column saying how many child rows point at it (a household's size = its members)
SIZE_NAMES = frozenset(
    {"household_size", "family_size", "members", "户人数", "家庭人口", "家庭人数", "户规模"}
)


def seats(parent: pa.Table, key: str) -> np.ndarray | None:
    """Each parent key repeated as often as its size column says (None without such a column)."""
    size = next((n for n in parent.column_names if n.lower() in SIZE_NAMES), None)
    if size is None or key not in parent.column_names or parent.num_rows == 0:
        return None
    sizes = parent.column(size)
    if not pa.types.is_integer(sizes.type) or sizes.null_count or parent.column(key).null_count:
        return None
    counts = np.clip(np.asarray(sizes.to_numpy()), 0, 1000)
    return np.repeat(np.asarray(parent.column(key).to_numpy(zero_copy_only=False)), counts)


def birth_column(profile: DatasetProfile) -> ColumnProfile | None:
    """The date column holding a birth date, by name (出生日期, birth_date, csrq …)."""
    return next(
        (c for c in profile.columns if c.type == "date" and any(h in c.name.lower() for h in BIRTH_HINTS)),
        None,
    )


def age_column(profile: DatasetProfile) -> ColumnProfile | None:
    """The integer column holding an age in whole years, by name (年龄, age …)."""
    return next(
        (c for c in profile.columns if c.type in ("int64", "float64") and c.name.lower() in AGE_NAMES), None
    )


def _year_month_day(dates: Values) -> tuple[Values, Values, Values]:
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    return years, months, days


def exact_age(birth: Values, as_of: np.datetime64) -> Values:
    """Completed years on ``as_of`` (the birthday itself counts), as 公民身份 rules count 周岁."""
    by, bm, bd = _year_month_day(birth.astype("datetime64[D]"))
    ay, am, ad = _year_month_day(np.array([as_of], dtype="datetime64[D]"))
    before = (am[0] < bm) | ((am[0] == bm) & (ad[0] < bd))
    ages: Values = ay[0] - by - before.astype(np.int64)
    return ages


def _years_before(as_of: np.datetime64, years: Values) -> Values:
    """``as_of`` moved back by whole years (29 Feb falls back to 28 Feb)."""
    month = as_of.astype("datetime64[M]")
    day = int((as_of - month).astype(np.int64))
    target = month - (12 * years).astype("timedelta64[M]")
    length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    shifted: Values = target.astype("datetime64[D]") + np.minimum(day, length - 1).astype("timedelta64[D]")
    return shifted


def births_from_ages(
    ages: Values, as_of: np.datetime64, rng: np.random.Generator, birth: ColumnProfile | None
) -> Values:
    """Birth dates that give exactly ``ages`` on ``as_of``, kept inside the birth column's range."""
    ages = np.clip(np.rint(ages).astype(np.int64), 0, 130)
    latest = _years_before(as_of, ages)
    earliest = _years_before(as_of, ages + 1) + np.timedelta64(1, "D")
    span = (latest - earliest).astype(np.int64) + 1
    births: Values = earliest + (rng.random(len(ages)) * span).astype(np.int64).astype("timedelta64[D]")
    if birth is not None:
        if birth.minimum is not None:
            births = np.maximum(births, np.datetime64(str(birth.minimum), "D"))
        if birth.maximum is not None:
            births = np.minimum(births, np.datetime64(str(birth.maximum), "D"))
    births = np.minimum(births, as_of)
    return births.astype("datetime64[D]")


def age_bands(ages: Values) -> Values:
    """Index into ``AGE_BANDS`` for each age."""
    bands: Values = np.clip(
        np.searchsorted(np.array(AGE_BANDS), ages, side="right") - 1, 0, len(AGE_BANDS) - 1
    )
    return bands


def by_age(col: ColumnProfile, ages: Values, rng: np.random.Generator, choices: Values) -> Values:
    """Categories drawn from the weights of each row's age band (nearest observed band if empty)."""
    weights = np.asarray(col.weights_by_age, dtype=float)
    observed = np.flatnonzero(weights.sum(axis=1) > 0)
    out = np.empty(len(ages), dtype=choices.dtype)
    if len(observed) == 0:
        return choices[rng.integers(0, len(choices), len(ages))]
    bands = age_bands(ages)
    for band in np.unique(bands):
        nearest = observed[np.argmin(np.abs(observed - band))]
        row = weights[nearest]
        rows = np.flatnonzero(bands == band)
        out[rows] = rng.choice(choices, size=len(rows), p=row / row.sum())
    return out


def scaled_by_age(col: ColumnProfile, values: Values, ages: Values) -> Values:
    """A measure rescaled so each age band has its approved mean (children earn nothing)."""
    means = col.mean_by_age or []
    overall = float(np.mean(values)) if len(values) else 0.0
    if overall == 0.0:
        return values
    observed = [i for i, m in enumerate(means) if m is not None]
    if not observed:
        return values
    bands = age_bands(np.nan_to_num(ages).astype(np.int64))
    nearest = np.array(observed)[np.argmin(np.abs(np.array(observed)[None, :] - bands[:, None]), axis=1)]
    factor = np.array([means[i] if means[i] is not None else overall for i in range(len(means))]) / overall
    scaled = values.astype(np.float64) * factor[nearest]
    low = float(col.minimum) if isinstance(col.minimum, (int, float)) else -np.inf
    high = float(col.maximum) if isinstance(col.maximum, (int, float)) else np.inf
    scaled = np.clip(scaled, low, high)
    result: Values = np.rint(scaled).astype(np.int64) if col.type == "int64" else scaled
    return result


def ages_of_rows(profile: DatasetProfile, done: dict[str, Values], as_of: np.datetime64) -> Values | None:
    age = age_column(profile)
    if age is not None and age.name in done:
        ages: Values = np.asarray(done[age.name], dtype=float)
        return ages
    birth = birth_column(profile)
    if birth is not None and birth.name in done:
        return exact_age(done[birth.name].astype("datetime64[D]"), as_of).astype(float)
    return None


def relabel(values: Values, labels: dict[str, str]) -> Values:
    """The label of each code (the code itself where the key set names none)."""
    codes = values.astype(str)
    keys, inverse = np.unique(codes, return_inverse=True)
    names = np.array([labels.get(str(k), str(k)) for k in keys], dtype=str)
    relabelled: Values = names[inverse.reshape(-1)] if len(keys) else codes
    return relabelled


def mapped(values: Values, mapping: dict[str, str]) -> tuple[Values, Values]:
    """(mapped values, mask of rows whose determinant has no entry)."""
    text = np.where(values, "true", "false") if values.dtype == bool else values.astype(str)
    keys, inverse = np.unique(text, return_inverse=True)
    found = np.array([k in mapping for k in keys], dtype=bool)
    targets = np.array([mapping.get(str(k), "") for k in keys], dtype=str)
    inverse = inverse.reshape(-1)
    return targets[inverse], ~found[inverse]


def parent_lookup(
    col: ColumnProfile, fk: ColumnProfile, fk_values: Values, related: dict[str, pa.Table]
) -> tuple[Values, Values] | None:
    """Values of ``col`` in the parent rows that ``fk_values`` point at, and a mask of misses."""
    if fk.foreign_key is None:
        return None
    dataset, key = split_foreign_key(fk.foreign_key)
    parent = related.get(dataset)
    if parent is None or col.name not in parent.column_names or key not in parent.column_names:
        return None
    try:
        keys = pc.cast(parent.column(key), arrow_type(fk.type))
        source = pc.cast(parent.column(col.name), arrow_type(col.type))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    index = pc.index_in(pa.array(fk_values, type=arrow_type(fk.type)), value_set=keys)
    taken = source.take(pc.fill_null(index, 0))
    missing = np.asarray(pc.or_(pc.is_null(index), pc.is_null(taken)).to_numpy(zero_copy_only=False))
    filled = pc.fill_null(taken, _filler(col.type))
    return np.asarray(filled.to_numpy(zero_copy_only=False)), missing


def _filler(type_name: str) -> pa.Scalar:
    if type_name == "string":
        return pa.scalar("", pa.string())
    if type_name in ("date", "timestamp"):
        return pa.scalar(0, pa.int64()).cast(arrow_type(type_name))
    if type_name == "bool":
        return pa.scalar(False)
    return pa.scalar(0, arrow_type(type_name))


def not_before(values: Values, start: Values, rng: np.random.Generator, col: ColumnProfile) -> Values:
    """End dates reflected above their start (end >= start), capped by the column's maximum."""
    unit = "D" if col.type == "date" else "us"
    end = values.astype(f"datetime64[{unit}]")
    begin = start.astype(f"datetime64[{unit}]")
    early = end < begin
    fixed = np.where(early, begin + (begin - end), end)
    if col.maximum is not None:
        cap = np.maximum(np.array([str(col.maximum)], dtype=f"datetime64[{unit}]"), begin)
        fixed = np.minimum(fixed, cap)
    result: Values = np.maximum(fixed, begin)
    return result
