"""Hypothesis: each coherence rule holds over arbitrary approved profiles, not just the demo's."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from countylab.dummy import ColumnProfile, DatasetProfile, generate, generate_related
from countylab.dummy.coherence import age_bands
from countylab.dummy.profile import AGE_BANDS
from countylab.identifiers import is_valid_id_number

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def counties(draw: st.DrawFn) -> dict[str, object]:
    code = draw(st.from_regex(r"[1-6][0-9]{5}", fullmatch=True))
    n_towns = draw(st.integers(1, 15))
    towns = [f"{code}{i + 1:03d}" for i in range(n_towns)]
    villages = [f"{t}{j + 1:03d}" for t in towns for j in range(draw(st.integers(1, 6)))]
    town_names = {t: f"第{i + 1}镇" for i, t in enumerate(towns)}
    village_names = {v: f"{v[-3:]}村" for v in villages}
    return {
        "code": code,
        "name": draw(st.sampled_from(["青禾县", "白水县", "东山区"])),
        "towns": towns,
        "villages": villages,
        "town_names": town_names,
        "village_names": village_names,
    }


def _people(county: dict[str, object], draw: st.DrawFn) -> DatasetProfile:
    towns, villages = county["towns"], county["villages"]
    assert isinstance(towns, list) and isinstance(villages, list)
    low = draw(st.integers(0, 60))
    high = draw(st.integers(low, 105))
    jobs = ["学龄前儿童", "在校学生", "务农", "离退休人员"]
    weights = [[float(draw(st.integers(0, 3))) for _ in jobs] for _ in AGE_BANDS]
    if not any(any(row) for row in weights):
        weights[0][0] = 1.0
    return DatasetProfile(
        "people",
        [
            ColumnProfile("person_id", "string", "privacy_unit_id", unique=True, id_prefix="R", key_width=7),
            ColumnProfile("gender", "string", "category", categories=["男", "女"]),
            ColumnProfile("age", "int64", "measure", minimum=low, maximum=high, mean=(low + high) / 2),
            ColumnProfile("birth_date", "date", None, null_rate=draw(st.sampled_from([0.0, 0.1]))),
            ColumnProfile("id_number", "string", "id_number", id_prefix=str(county["code"])),
            ColumnProfile(
                "village_code",
                "string",
                "category",
                categories=villages,
                labels=dict(county["village_names"]),
            ),
            ColumnProfile(
                "town_code",
                "string",
                "category",
                categories=towns,
                labels=dict(county["town_names"]),
                determined_by="village_code",
                mapping={v: v[:9] for v in villages},
            ),
            ColumnProfile("town_name", "string", None, label_of="town_code"),
            ColumnProfile("address", "string", "address", id_prefix=str(county["name"])),
            ColumnProfile("job", "string", "category", categories=jobs, weights_by_age=weights),
            ColumnProfile("registered", "date", "date", minimum="2000-01-01", maximum="2020-12-31"),
            ColumnProfile(
                "left", "date", "date", minimum="2005-01-01", maximum="2024-12-31", after="registered"
            ),
        ],
        primary_key=["person_id"],
        as_of=draw(st.dates(dt.date(2000, 1, 1), dt.date(2040, 12, 31))).isoformat(),
    )


@SETTINGS
@given(st.data(), counties(), st.integers(1, 600), st.integers(0, 2**32))
def test_rows_are_coherent_for_any_county(
    data: st.DataObject, county: dict[str, object], n: int, seed: int
) -> None:
    profile = _people(county, data.draw)
    rows = generate(profile, n, seed=seed).to_pylist()
    as_of = dt.date.fromisoformat(profile.as_of or "")
    job = profile.column("job")
    weights = np.asarray(job.weights_by_age)
    observed = np.flatnonzero(weights.sum(axis=1) > 0)
    town_names, village_names = county["town_names"], county["village_names"]
    assert isinstance(town_names, dict) and isinstance(village_names, dict)
    for r in rows:
        birth, age = r["birth_date"], r["age"]
        if birth is not None:
            assert as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day)) == age
            assert birth <= as_of
            assert r["id_number"][6:14] == birth.strftime("%Y%m%d")
        assert is_valid_id_number(r["id_number"]) and r["id_number"][:6] == county["code"]
        assert int(r["id_number"][16]) % 2 == (1 if r["gender"] == "男" else 0)
        assert r["village_code"].startswith(r["town_code"])
        assert r["town_name"] == town_names[r["town_code"]]
        expected = f"{county['name']}{town_names[r['town_code']]}{village_names[r['village_code']]}"
        assert r["address"].startswith(expected)
        band = int(age_bands(np.array([age]))[0])
        nearest = observed[np.argmin(np.abs(observed - band))]
        assert weights[nearest][job.categories.index(r["job"])] > 0  # type: ignore[union-attr]
        assert r["left"] >= r["registered"]
    if n >= 4 * len(profile.column("village_code").categories or []):
        assert {r["village_code"] for r in rows} == set(county["villages"])  # type: ignore[arg-type]


@SETTINGS
@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=3),
    st.integers(1, 200),
    st.integers(0, 2**32),
)
def test_composite_keys_are_unique_up_to_their_key_space(sizes: list[int], n: int, seed: int) -> None:
    columns = [ColumnProfile("id", "string", "key", id_prefix="P", key_width=6)]
    columns += [
        ColumnProfile(f"k{i}", "int64", "category", categories=[str(2020 + j) for j in range(size)])
        for i, size in enumerate(sizes)
    ]
    profile = DatasetProfile("plots", columns, primary_key=[c.name for c in columns])
    table = generate(profile, n, seed=seed)
    keys = list(zip(*(table.column(c.name).to_pylist() for c in columns), strict=True))
    assert len(keys) == n == len(set(keys))
    only_categories = DatasetProfile("codes", columns[1:], primary_key=[c.name for c in columns[1:]])
    closed = generate(only_categories, n, seed=seed)
    space = int(np.prod(sizes))
    assert closed.num_rows == min(n, space)  # a closed key list is generated whole, never padded
    assert (
        len(set(zip(*(closed.column(c.name).to_pylist() for c in columns[1:]), strict=True)))
        == closed.num_rows
    )


@SETTINGS
@given(
    st.integers(0, 4),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(0, 1e6, allow_nan=False),
    st.integers(0, 2**32),
)
def test_precision_follows_the_column(scale: int, low: float, span: float, seed: int) -> None:
    profile = DatasetProfile(
        "money",
        [
            ColumnProfile("amount", "float64", "measure", minimum=low, maximum=low + span, scale=scale),
            ColumnProfile("count", "int64", "measure", minimum=0, maximum=50),
        ],
    )
    table = generate(profile, 300, seed=seed)
    for value in table.column("amount").to_pylist():
        assert Decimal(repr(value)).as_tuple().exponent >= -max(scale, 1)
        assert round(value, scale) == value
    assert all(isinstance(v, int) for v in table.column("count").to_pylist())


@SETTINGS
@given(st.integers(1, 300), st.integers(1, 500), st.integers(0, 2**32))
def test_children_repeat_their_parent_row_and_find_it(parents: int, children: int, seed: int) -> None:
    villages = [f"330729001{i:03d}" for i in range(1, 9)]
    households = DatasetProfile(
        "households",
        [
            ColumnProfile(
                "household_id", "string", "privacy_unit_id", unique=True, id_prefix="H", key_width=7
            ),
            ColumnProfile("village_code", "string", "category", categories=villages),
        ],
        primary_key=["household_id"],
    )
    residents = DatasetProfile(
        "residents",
        [
            ColumnProfile(
                "resident_id", "string", "privacy_unit_id", unique=True, id_prefix="R", key_width=7
            ),
            ColumnProfile("household_id", "string", "foreign_key", foreign_key="households.household_id"),
            ColumnProfile("village_code", "string", "category", categories=villages, follows="household_id"),
        ],
        primary_key=["resident_id"],
    )
    tables = generate_related(
        [residents, households], {"households": parents, "residents": children}, seed=seed
    )
    home = dict(
        zip(
            tables["households"].column("household_id").to_pylist(),
            tables["households"].column("village_code").to_pylist(),
            strict=True,
        )
    )
    for hid, village in zip(
        tables["residents"].column("household_id").to_pylist(),
        tables["residents"].column("village_code").to_pylist(),
        strict=True,
    ):
        assert hid in home and village == home[hid]
