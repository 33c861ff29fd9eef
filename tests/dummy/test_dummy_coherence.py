"""Dummy data behaves like the real data (issue 12, item 3), on every demo dataset.

Profiles are proposed from the tiny demo county by the lab's own profiling path
(``tests/dummy/demo_profiles.py``); the tests then read only generated rows.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from countylab.catalog.analysis import analyse
from countylab.dummy import ColumnProfile, DatasetProfile, generate, generate_related
from countylab.dummy.coherence import exact_age
from countylab.identifiers import is_valid_id_number
from tests.dummy.demo_profiles import DemoCounty, build

NAMES = ["towns", "villages", "households", "residents", "enterprises", "farmland_plots",
         "elderly_care_records", "traffic_counts", "air_quality"]  # fmt: skip


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> DemoCounty:
    return build(tmp_path_factory.mktemp("demo-county"))


@pytest.fixture(scope="module")
def family(county: DemoCounty) -> dict[str, pa.Table]:
    rows = {name: 400 for name in county.profiles}
    return generate_related(list(county.profiles.values()), rows, seed=7)


def _age(birth: dt.date, as_of: dt.date) -> int:
    return as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))


def test_the_issue_numbers_residents_agree_and_cover_every_town(county: DemoCounty) -> None:
    """Before: age disagreed with birth date in 953 of 1,000 rows, 3 of 12 towns appeared and the
    address named 示范县. Now: 0 of 1,000, all 12 towns, the county's own names and area code."""
    profile = county.profiles["residents"]
    rows = generate(profile, 1000, seed=0).to_pylist()
    as_of = dt.date.fromisoformat(profile.as_of or "")
    both = [r for r in rows if r["birth_date"] is not None and r["age"] is not None]
    assert len(both) > 900
    assert sum(_age(r["birth_date"], as_of) != r["age"] for r in both) == 0
    towns = county.key_sets["towns.town_code"]
    assert {r["town_code"] for r in rows} == set(towns.values)
    assert len(towns.values) == 12
    villages = county.key_sets["villages.village_code"].labels
    for r in rows:
        id_number = r["id_number"]
        assert is_valid_id_number(id_number)
        if r["birth_date"] is not None:
            assert id_number[6:14] == r["birth_date"].strftime("%Y%m%d")
        assert int(id_number[16]) % 2 == (1 if r["gender"] == "男" else 0)
        assert r["village_code"].startswith(r["town_code"])
        if r["address"] is not None:
            expected = county.county_name + towns.labels[r["town_code"]] + villages[r["village_code"]]
            assert r["address"].startswith(expected), (r["address"], expected)
    region = sum(r["id_number"][:6] == county.county_code for r in rows)
    assert region == len(rows)  # the county's own 6-digit area code, approved as a frequent shape


def test_occupation_school_and_marriage_follow_age(county: DemoCounty) -> None:
    rows = generate(county.profiles["residents"], 5000, seed=3).to_pylist()
    for r in rows:
        age, job = r["age"], r["occupation"]
        if age is None or job is None:
            continue
        assert not (job == "离退休人员" and age < 45), r
        assert not (job == "在校学生" and age >= 30), r
        assert not (job == "学龄前儿童" and age >= 6), r
        if r["marital_status"] is not None:
            assert not (r["marital_status"] != "未婚" and age < 18), r
        if r["education"] is not None:
            assert not (r["education"] == "本科及以上" and age < 18), r
        if r["income"] is not None and age < 15:
            assert r["income"] == 0, r  # the approved mean of every band under 15 is 0


def _approved(col_type: str, values: list[str]) -> set[object]:
    if col_type == "int64":
        return {int(v) for v in values}
    return set(values)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rows", [1, 3, 10, 500])
def test_every_demo_dataset_keeps_its_profile(county: DemoCounty, name: str, rows: int) -> None:
    """Unique keys even for tiny sizes (farmland_plots answered 422 for 10 rows), categories from
    the approved list, decimal scale, integer columns, dates inside the approved range."""
    profile = county.profiles[name]
    table = generate(profile, rows, seed=rows)
    assert 1 <= table.num_rows <= rows
    if profile.primary_key:
        keys = list(zip(*(table.column(k).to_pylist() for k in profile.primary_key), strict=True))
        assert len(set(keys)) == len(keys)
    _check_columns(profile, table)


def _check_columns(profile: DatasetProfile, table: pa.Table) -> None:
    data = table.to_pydict()
    for col in profile.columns:
        values = [v for v in data[col.name] if v is not None]
        if col.categories and col.label_of is None and col.follows is None:
            assert set(values) <= _approved(col.type, col.categories), col.name
        if col.type == "float64" and col.scale is not None:
            assert all(Decimal(repr(v)).as_tuple().exponent >= -col.scale for v in values), col.name
        if col.type in ("date", "timestamp") and col.minimum is not None and col.maximum is not None:
            low = dt.date.fromisoformat(str(col.minimum)[:10])
            high = dt.date.fromisoformat(str(col.maximum)[:10])
            days = [v.date() if isinstance(v, dt.datetime) else v for v in values]
            assert all(low <= d <= high for d in days), col.name
        if col.type == "timestamp" and col.step_seconds:
            assert all(int(v.timestamp()) % col.step_seconds == 0 for v in values), col.name
        if col.label_of is not None:
            labels = profile.column(col.label_of).labels or {}
            for code, label in zip(data[col.label_of], data[col.name], strict=True):
                if code is not None and label is not None:
                    assert label == labels.get(code, code), col.name
        if col.determined_by is not None and col.mapping is not None and col.follows is None:
            for source, value in zip(data[col.determined_by], data[col.name], strict=True):
                source = str(source).lower() if isinstance(source, bool) else source
                if source is not None and value is not None and str(source) in col.mapping:
                    assert str(value).lower() == col.mapping[str(source)].lower(), col.name
        group = col.follows or col.constant_per  # a household keeps its address; a plot its area
        if group is not None:
            seen: dict[object, object] = {}
            for key, value in zip(data[group], data[col.name], strict=True):
                if key is not None and value is not None:
                    assert seen.setdefault(key, value) == value, col.name
        if col.after is not None:
            for start, end in zip(data[col.after], data[col.name], strict=True):
                if start is not None and end is not None:
                    assert end >= start, col.name
    assert all(
        isinstance(v, int)
        for c in profile.columns
        if c.type == "int64"
        for v in data[c.name]
        if v is not None
    )


def test_joins_hold_across_all_demo_datasets(county: DemoCounty, family: dict[str, pa.Table]) -> None:
    """Every foreign key finds its parent; a resident's village and town are their household's."""
    for profile in county.profiles.values():
        table = family[profile.name]
        for col in profile.columns:
            if col.foreign_key is None:
                continue
            parent, key = col.foreign_key.split(".")
            children = set(pc.drop_null(table.column(col.name)).to_pylist())
            assert children <= set(family[parent].column(key).to_pylist()), col.name
    households = {r["household_id"]: r for r in family["households"].to_pylist()}
    for r in family["residents"].to_pylist():
        home = households[r["household_id"]]
        assert (r["village_code"], r["town_code"]) == (home["village_code"], home["town_code"])
        if r["address"] is not None and home["address"] is not None:
            assert r["address"] == home["address"]
    for table in family.values():  # village ↔ town agree in every dataset that has both
        if {"village_code", "town_code"} <= set(table.column_names):
            for v, t in zip(table.column("village_code").to_pylist(), table.column("town_code").to_pylist()):
                assert v is None or t is None or v.startswith(t)


def test_generation_is_a_pure_function_of_its_inputs(county: DemoCounty) -> None:
    profile = county.profiles["residents"]
    a = generate(profile, 300, seed=5, as_of=dt.date(2030, 6, 1))
    assert a.equals(generate(profile, 300, seed=5, as_of=dt.date(2030, 6, 1)))
    ages = exact_age(
        np.array(a.column("birth_date").to_pylist(), dtype="datetime64[D]"), np.datetime64("2030-06-01")
    )
    assert [int(x) for x in ages] == a.column("age").to_pylist()


def test_the_profile_reveals_no_resident(county: DemoCounty) -> None:
    """Only shapes shared by many rows leave the real data: the area code, the county name."""
    text = json.dumps([p.to_dict() for p in county.profiles.values()], ensure_ascii=False)
    residents = county.tables["residents"]
    for column in ("name", "id_number", "mobile"):
        for value in residents.column(column).to_pylist()[:300]:
            if value:
                assert json.dumps(value, ensure_ascii=False) not in text, (column, value)
    for address in county.tables["households"].column("address").to_pylist()[:300]:
        assert address not in text


def _upload(tmp: Path, table: pa.Table, county: DemoCounty) -> DatasetProfile:
    pq.write_table(table, tmp / "upload.parquet")
    return analyse(
        [tmp / "upload.parquet"],
        name="upload",
        privacy_unit="person",
        privacy_unit_column=None,
        row_count=table.num_rows,
        tags=[],
        department="民政局",
        semantics={},
        key_sets={},
        primary_key=None,
        catalog_key_sets=list(county.key_sets.values()),
    ).dummy


def test_an_uploaded_town_column_draws_the_countys_towns(tmp_path: Path, county: DemoCounty) -> None:
    """The 乡镇 column of a clerk's upload was filled with 已核实; 金额 had 13 decimals."""
    towns = sorted(county.key_sets["towns.town_code"].labels.values())
    n = 240
    table = pa.table(
        {
            "乡镇": [towns[i % 12] if i % 40 else towns[0] for i in range(n)],  # 20 rows per town
            "村社区": [f"{'东西南北'[i % 4]}山村" if i % 9 else f"罕见{i}村" for i in range(n)],
            "金额": pa.array(
                [Decimal(f"{100 + i * 7 % 900}.{i % 100:02d}") for i in range(n)], pa.decimal128(12, 2)
            ),
            "补贴": [round(50 + i * 0.37, 2) for i in range(n)],
            "人数": [1 + i % 6 for i in range(n)],
            "备注": ["已核实"] * n,
        }
    )
    profile = _upload(tmp_path, table, county)
    assert profile.column("乡镇").categories == towns
    assert profile.column("金额").scale == 2 and profile.column("补贴").scale == 2
    village = profile.column("村社区")
    assert village.categories is not None and not any("罕见" in v for v in village.categories)
    rows = generate(profile, 1000, seed=1).to_pydict()
    assert set(rows["乡镇"]) == set(towns)  # every town, no 已核实
    assert set(rows["村社区"]) <= {"东山村", "西山村", "南山村", "北山村"}
    for column in ("金额", "补贴"):
        assert all(round(v, 2) == v and len(repr(v).split(".")[-1]) <= 2 for v in rows[column])
    assert all(isinstance(v, int) for v in rows["人数"])


def test_a_place_column_without_an_approved_list_never_gets_remarks(
    tmp_path: Path, county: DemoCounty
) -> None:
    rare = pa.table({"乡镇": [f"某{i}镇" for i in range(30)], "备注": ["无"] * 30})
    profile = _upload(tmp_path, rare, county)
    assert profile.column("乡镇").categories is None  # every value is rare: none is approved
    values = set(generate(profile, 200, seed=0).column("乡镇").to_pylist())
    assert values and all(v.startswith("乡镇") for v in values)
    assert not values & {
        "已核实",
        "情况正常",
        "已办结",
        "待回访",
        "需跟进",
        "资料齐全",
        "暂无异常",
        "按期完成",
    }


def test_farmland_plots_ten_rows_have_unique_keys(county: DemoCounty) -> None:
    table = generate(county.profiles["farmland_plots"], 10, seed=0)
    keys = list(zip(table.column("plot_id").to_pylist(), table.column("year").to_pylist(), strict=True))
    assert len(keys) == 10 == len(set(keys))
    assert {year for _, year in keys} == {2025, 2026}
    profile = county.profiles["farmland_plots"]
    assert {c.name for c in profile.columns if c.constant_per == "plot_id"} >= {"household_id", "area_mu"}


def test_hundred_thousand_residents_are_generated_whole(county: DemoCounty) -> None:
    """A large table comes out whole and seeded: the same seed, the same rows."""
    table = generate(county.profiles["residents"], 100_000, seed=0)
    assert table.num_rows == 100_000
    assert table.slice(99_990).equals(generate(county.profiles["residents"], 100_000, seed=0).slice(99_990))


def test_household_size_is_its_number_of_members(county: DemoCounty) -> None:
    """Left to size the residents itself, generation gives every household exactly its size in
    members, and names one of them as its head (the households ↔ residents cycle is cut)."""
    rows = {name: 200 for name in county.profiles if name != "residents"}
    tables = generate_related(list(county.profiles.values()), rows, seed=11)
    households = tables["households"].to_pylist()
    residents = tables["residents"].to_pylist()
    members: dict[str, int] = {}
    for r in residents:
        members[r["household_id"]] = members.get(r["household_id"], 0) + 1
    assert all(members.get(h["household_id"], 0) == h["household_size"] for h in households)
    home = {r["resident_id"]: r["household_id"] for r in residents}
    assert all(home[h["head_resident_id"]] == h["household_id"] for h in households if h["head_resident_id"])


def test_fewer_residents_never_overfill_a_household(family: dict[str, pa.Table]) -> None:
    sizes = {h["household_id"]: h["household_size"] for h in family["households"].to_pylist()}
    members: dict[str, int] = {}
    for r in family["residents"].to_pylist():
        members[r["household_id"]] = members.get(r["household_id"], 0) + 1
    assert all(count <= sizes[hid] for hid, count in members.items())


def test_organisations_are_named_in_the_county(county: DemoCounty) -> None:
    profile = county.profiles["enterprises"]
    assert profile.column("name").id_prefix == county.county_name
    names = generate(profile, 200, seed=2).column("name").to_pylist()
    assert all(
        n.startswith(county.county_name) and n.endswith(("公司", "合作社", "经营部", "服务站")) for n in names
    )


def test_no_registration_after_today_without_an_approved_bound() -> None:
    profile = DatasetProfile(
        "register",
        [
            ColumnProfile("registered", "date", "date"),
            ColumnProfile("seen_at", "timestamp", None),
        ],
        as_of="2020-06-30",
    )
    table = generate(profile, 2000, seed=4)
    assert max(table.column("registered").to_pylist()) <= dt.date(2020, 6, 30)
    assert max(table.column("seen_at").to_pylist()) < dt.datetime(2020, 7, 1)


def test_a_preview_without_parents_keeps_households_and_plots_whole(county: DemoCounty) -> None:
    """The dataset page generates one dataset alone: still one village per household, and a
    plot's village is its household's in every year."""
    residents = generate(county.profiles["residents"], 300, seed=6).to_pylist()
    homes: dict[str, tuple[str, str]] = {}
    for r in residents:
        place = (r["village_code"], r["town_code"])
        assert homes.setdefault(r["household_id"], place) == place
    plots = generate(county.profiles["farmland_plots"], 300, seed=6).to_pylist()
    farms: dict[str, str] = {}
    for p in plots:
        assert farms.setdefault(p["household_id"], p["village_code"]) == p["village_code"]


def test_profiling_samples_the_whole_file_not_its_first_towns(tmp_path: Path) -> None:
    """Residents files are sorted by household, hence by town: the first 100,000 rows of the
    full county held 3 of 12 towns. The sample is spread over the whole version."""
    from countylab.catalog.analysis import sample_batches, spread_sample

    towns = [f"330729{t:03d}" for t in range(1, 13)]
    table = pa.table({"town_code": [t for t in towns for _ in range(500)], "n": list(range(6000))})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=700)
    first = pa.Table.from_batches(list(sample_batches([tmp_path / "a.parquet"], 1200)))
    assert len(set(first.column("town_code").to_pylist())) == 3  # the old way
    spread = spread_sample([tmp_path / "a.parquet"], 1200)
    assert spread.num_rows == 1200
    assert set(spread.column("town_code").to_pylist()) == set(towns)
    assert spread.column("n").to_pylist() == sorted(spread.column("n").to_pylist())


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(NAMES), rows=st.integers(1, 700), seed=st.integers(0, 2**32))
def test_any_size_and_seed_of_any_demo_dataset_keeps_its_profile(
    county: DemoCounty, name: str, rows: int, seed: int
) -> None:
    profile = county.profiles[name]
    table = generate(profile, rows, seed=seed)
    if profile.primary_key:
        keys = list(zip(*(table.column(k).to_pylist() for k in profile.primary_key), strict=True))
        assert len(set(keys)) == len(keys)
    _check_columns(profile, table)
    if name == "residents":
        as_of = dt.date.fromisoformat(profile.as_of or "")
        for r in table.to_pylist():
            if r["birth_date"] is not None and r["age"] is not None:
                assert _age(r["birth_date"], as_of) == r["age"]


def test_living_alone_means_a_household_of_one(county: DemoCounty) -> None:
    profile = county.profiles["households"]
    assert profile.column("lives_alone").determined_by == "household_size"
    rows = generate(profile, 2000, seed=9).to_pylist()
    for r in rows:
        if r["household_size"] is not None and r["lives_alone"] is not None:
            assert r["lives_alone"] == (r["household_size"] == 1), r
