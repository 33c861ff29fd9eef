"""Generated tables follow the profile: schema, nulls, ranges, categories, checksums, keys."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from countylab.dummy import (
    ColumnProfile,
    DatasetProfile,
    arrow_type,
    generate,
    generate_related,
    generation_order,
    is_dummy,
)
from countylab.errors import TooLarge, ValidationFailed
from countylab.identifiers import is_valid_id_number, is_valid_luhn, is_valid_uscc
from tests.dummy.dummy_profiles import care_profile, households_profile, residents_profile


@pytest.fixture(scope="module")
def residents() -> pa.Table:
    return generate(residents_profile(), 5000, seed=7)


def test_columns_and_types_match_the_profile_exactly(residents: pa.Table) -> None:
    profile = residents_profile()
    assert residents.column_names == [c.name for c in profile.columns]
    assert [f.type for f in residents.schema] == [arrow_type(c.type) for c in profile.columns]
    assert residents.num_rows == 5000
    assert is_dummy(residents)
    assert residents.schema.metadata[b"countylab.dummy"] == b"true"


def test_null_rates_are_honoured(residents: pa.Table) -> None:
    for col in residents_profile().columns:
        observed = residents.column(col.name).null_count / residents.num_rows
        assert abs(observed - col.null_rate) <= 0.02, col.name


def test_primary_key_is_unique_and_never_null(residents: pa.Table) -> None:
    keys = residents.column("resident_id")
    assert keys.null_count == 0
    assert pc.count_distinct(keys).as_py() == residents.num_rows
    assert keys[0].as_py().startswith("R")
    assert pc.count_distinct(residents.column("id_number")).as_py() == residents.num_rows


def test_numbers_and_dates_stay_in_range(residents: pa.Table) -> None:
    income = residents.column("income")
    assert pc.min(income).as_py() >= 0 and pc.max(income).as_py() <= 500000
    assert 30000 < pc.mean(income).as_py() < 50000  # skewed measure keeps its mean roughly
    births = residents.column("birth_date")
    assert pc.min(births).as_py() >= dt.date(1930, 1, 1)
    assert pc.max(births).as_py() <= dt.date(2020, 12, 31)
    stamps = residents.column("updated_at")
    assert pc.min(stamps).as_py() >= dt.datetime(2024, 1, 1)
    assert pc.max(stamps).as_py() <= dt.datetime(2024, 12, 31, 23, 59, 59)
    poor = pc.mean(pc.cast(residents.column("is_poor"), pa.float64())).as_py()
    assert 0.07 < poor < 0.13


def test_lognormal_integer_measure_within_bounds() -> None:
    table = generate(care_profile(), 5000, seed=3)
    minutes = table.column("minutes")
    assert pc.min(minutes).as_py() >= 10 and pc.max(minutes).as_py() <= 240
    assert 35 < pc.mean(minutes).as_py() < 55
    assert pc.approximate_median(minutes).as_py() < pc.mean(minutes).as_py()  # right-skewed


def test_categories_come_only_from_the_list_with_their_weights() -> None:
    table = generate(households_profile(), 5000, seed=1)
    counts = {r["values"]: r["counts"] for r in pc.value_counts(table.column("township")).to_pylist()}
    assert set(counts) == {"城关镇", "青石镇", "南湖街道"}
    assert abs(counts["城关镇"] / 5000 - 0.5) < 0.03
    assert set(table.column("village").to_pylist()) == {"和平村", "建设村", "东风社区"}


def test_fake_identifiers_pass_their_checksums(residents: pa.Table) -> None:
    def values(name: str) -> list[str]:
        return [v for v in residents.column(name).to_pylist() if v is not None]

    assert all(is_valid_id_number(v) for v in values("id_number"))
    assert all(is_valid_uscc(v) for v in values("employer_uscc"))
    assert all(is_valid_luhn(v) and len(v) == 19 for v in values("bank_card"))
    assert all(len(v) == 11 and v[0] == "1" and v[1] in "3456789" and v.isdigit() for v in values("mobile"))
    plates = values("plate")
    assert all(len(p) == 7 and not p[0].isascii() and p[1].isupper() for p in plates)
    names = values("name")
    assert all(2 <= len(n) <= 3 for n in names) and len(set(names)) > 500


def test_id_numbers_agree_with_birth_date_and_sex(residents: pa.Table) -> None:
    rows = residents.select(["id_number", "birth_date", "sex"]).to_pylist()
    for row in rows:
        if row["birth_date"] is not None:
            assert row["id_number"][6:14] == row["birth_date"].strftime("%Y%m%d")
        assert int(row["id_number"][16]) % 2 == (1 if row["sex"] == "男" else 0)


def test_id_numbers_follow_an_age_column() -> None:
    profile = DatasetProfile(
        "people",
        [
            ColumnProfile("age", "int64", "measure", minimum=60, maximum=100),
            ColumnProfile("id_number", "string", "id_number", id_prefix="341122"),
        ],
    )
    table = generate(profile, 500, seed=2, as_of=dt.date(2025, 1, 1))
    for row in table.to_pylist():
        assert row["id_number"].startswith("341122") and is_valid_id_number(row["id_number"])
        assert 2025 - int(row["id_number"][6:10]) in (row["age"], row["age"] + 1)


def test_addresses_are_built_from_place_columns() -> None:
    table = generate(households_profile(), 300, seed=4)
    for row in table.to_pylist():
        if row["address"] is not None:
            assert row["address"].startswith(row["township"] + row["village"])
            assert row["address"].endswith("号")


def test_same_seed_same_table_other_seed_other_table() -> None:
    first = generate(residents_profile(), 1000, seed=11)
    assert first.equals(generate(residents_profile(), 1000, seed=11))
    other = generate(residents_profile(), 1000, seed=12)
    assert first.column("id_number") != other.column("id_number")


def test_foreign_keys_join_across_three_datasets(family: list[DatasetProfile]) -> None:
    tables = generate_related(family, {"households": 800, "residents": 3000}, seed=5)
    assert tables["elderly_care_records"].num_rows == 3000  # row_count_hint
    households = set(tables["households"].column("household_id").to_pylist())
    residents = tables["residents"]
    assert set(residents.column("household_id").to_pylist()) <= households
    resident_ids = set(residents.column("resident_id").to_pylist())
    care_ids = set(tables["elderly_care_records"].column("resident_id").to_pylist())
    assert care_ids <= resident_ids and len(care_ids) > 1000
    assert all(is_dummy(t) for t in tables.values())


def test_integer_foreign_keys_and_unique_one_to_one_links() -> None:
    parent = DatasetProfile("farms", [ColumnProfile("farm_id", "int64", "key")], primary_key=["farm_id"])
    child = DatasetProfile(
        "farm_surveys",
        [
            ColumnProfile("farm_id", "int64", "foreign_key", foreign_key="farms.farm_id", unique=True),
        ],
    )
    tables = generate_related([child, parent], {"farms": 50, "farm_surveys": 50}, seed=0)
    assert sorted(tables["farm_surveys"].column("farm_id").to_pylist()) == list(range(1, 51))
    with pytest.raises(ValidationFailed):
        generate_related([child, parent], {"farms": 10, "farm_surveys": 11}, seed=0)


def test_self_reference_and_missing_parent_fall_back() -> None:
    profile = DatasetProfile(
        "staff",
        [
            ColumnProfile("staff_id", "string", "key", id_prefix="S"),
            ColumnProfile("manager_id", "string", "foreign_key", foreign_key="staff.staff_id", null_rate=0.1),
            ColumnProfile("household_id", "string", "foreign_key", foreign_key="households.household_id"),
        ],
        primary_key=["staff_id"],
    )
    table = generate(profile, 400)
    staff = set(table.column("staff_id").to_pylist())
    assert {m for m in table.column("manager_id").to_pylist() if m is not None} <= staff
    assert all(h.startswith("H") for h in table.column("household_id").to_pylist())


def test_cycles_between_datasets_are_cut_and_still_join() -> None:
    """A household names its head resident and a resident their household: a strict order is
    refused, but generating both cuts the cycle and patches the cut keys, so both joins hold."""
    a = DatasetProfile(
        "a",
        [ColumnProfile("id", "int64", "key"), ColumnProfile("b_id", "int64", foreign_key="b.id")],
        primary_key=["id"],
    )
    b = DatasetProfile(
        "b",
        [ColumnProfile("id", "int64", "key"), ColumnProfile("a_id", "int64", foreign_key="a.id")],
        primary_key=["id"],
    )
    with pytest.raises(ValidationFailed) as caught:
        generation_order([a, b])
    assert caught.value.details["reason"] == "foreign_key"
    tables = generate_related([a, b], {"a": 50, "b": 70}, seed=0)
    assert set(tables["a"].column("b_id").to_pylist()) <= set(tables["b"].column("id").to_pylist())
    assert set(tables["b"].column("a_id").to_pylist()) <= set(tables["a"].column("id").to_pylist())


def test_composite_primary_key_is_made_unique() -> None:
    profile = DatasetProfile(
        "members",
        [
            ColumnProfile("household_id", "string", "key", id_prefix="H"),
            ColumnProfile("member_no", "int64", "key", minimum=1, maximum=12),
        ],
        primary_key=["household_id", "member_no"],
    )
    table = generate(profile, 3000, seed=9)
    pairs = set(
        zip(table.column("household_id").to_pylist(), table.column("member_no").to_pylist(), strict=True)
    )
    assert len(pairs) == 3000
    assert pc.max(table.column("member_no")).as_py() <= 12


def test_impossible_uniqueness_is_a_clear_error() -> None:
    profile = DatasetProfile(
        "tiny", [ColumnProfile("code", "int64", "measure", minimum=1, maximum=5)], primary_key=["code"]
    )
    with pytest.raises(ValidationFailed) as caught:
        generate(profile, 6)
    assert caught.value.details == {"column": "code", "reason": "unique"}


def test_zero_rows_and_row_limits() -> None:
    empty = generate(residents_profile(), 0)
    assert empty.num_rows == 0 and is_dummy(empty)
    assert empty.schema.remove_metadata() == residents_profile().arrow_schema()
    with pytest.raises(ValidationFailed):
        generate(residents_profile(), -1)
    with pytest.raises(TooLarge):
        generate(residents_profile(), 10**9)


def test_int_typed_identifiers_and_categories() -> None:
    profile = DatasetProfile(
        "codes",
        [
            ColumnProfile("level", "int64", "category", categories=["1", "2", "3"]),
            ColumnProfile("flag", "bool", categories=["true"]),
            ColumnProfile("day", "date", categories=["2024-05-01", "2024-10-01"]),
            ColumnProfile("phone", "int64", "mobile", id_prefix="139"),
            ColumnProfile("card", "int64", "bank_card"),
        ],
    )
    table = generate(profile, 200, seed=1)
    assert set(table.column("level").to_pylist()) == {1, 2, 3}
    assert set(table.column("flag").to_pylist()) == {True}
    assert set(table.column("day").to_pylist()) == {dt.date(2024, 5, 1), dt.date(2024, 10, 1)}
    assert all(str(p).startswith("139") and len(str(p)) == 11 for p in table.column("phone").to_pylist())
    assert all(is_valid_luhn(str(c)) for c in table.column("card").to_pylist())


def test_every_column_of_the_null_rate_grid() -> None:
    rates = [0.0, 0.05, 0.25, 0.5, 0.95, 1.0]
    profile = DatasetProfile(
        "grid", [ColumnProfile(f"c{i}", "float64", null_rate=r) for i, r in enumerate(rates)]
    )
    table = generate(profile, 5000, seed=0)
    observed = np.array([table.column(f"c{i}").null_count / 5000 for i in range(len(rates))])
    assert np.all(np.abs(observed - np.array(rates)) <= 0.02)


def test_100k_rows_generate() -> None:
    # how fast is a benchmark's question, not a test's (a loaded CI machine is no stopwatch)
    table = generate(residents_profile(), 100_000, seed=1)
    assert table.num_rows == 100_000 and table.num_columns == 13


def test_related_generation_is_deterministic_and_checks_parent_columns(family: list[DatasetProfile]) -> None:
    sizes = {"households": 100, "residents": 300, "elderly_care_records": 200}
    first = generate_related(family, sizes, seed=3)
    again = generate_related(list(reversed(family)), sizes, seed=3)
    assert all(first[name].equals(again[name]) for name in sizes)
    broken = DatasetProfile(
        "visits", [ColumnProfile("resident_id", "string", foreign_key="residents.no_such_column")]
    )
    with pytest.raises(ValidationFailed) as caught:
        generate(broken, 10, related={"residents": first["residents"]})
    assert caught.value.details == {"column": "resident_id", "reason": "foreign_key"}
