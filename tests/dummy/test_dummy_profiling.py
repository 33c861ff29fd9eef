"""profile_from_table proposes a profile without exposing sensitive or rare values."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from countylab.dummy import DatasetProfile, generate, profile_from_table
from countylab.dummy.profiling import KEY_SET_FLOOR
from countylab.errors import ValidationFailed

PLANTED_NAME = "欧阳翠花"
PLANTED_ID = "110101199003077777"
PLANTED_INCOME = 987654.25
PLANTED_RARE_VILLAGE = "孤山村"
PLANTED_RARE_CODE = 4242


def _real_table() -> pa.Table:
    rows = 600
    names = ["张伟", "李娜", "王芳"] * (rows // 3)
    names[17] = PLANTED_NAME
    ids = [f"3401001980010{i % 10}{i:04d}"[:18] for i in range(rows)]
    ids[42] = PLANTED_ID
    income = [1000.0 + i for i in range(rows)]
    income[99] = PLANTED_INCOME
    villages = (["和平村"] * 300) + (["建设村"] * 297) + [PLANTED_RARE_VILLAGE] * 3
    codes = [1] * 590 + [PLANTED_RARE_CODE] * 9 + [None]
    towns = ["城关镇"] * 400 + ["青石镇"] * 195 + ["偏岭乡"] * 5
    visits = [dt.date(2024, 1, 1) + dt.timedelta(days=i % 300) for i in range(rows)]
    visits[5] = None
    return pa.table(
        {
            "name": names,
            "id_number": ids,
            "income": income,
            "village": villages,
            "town": towns,
            "code": pa.array(codes, pa.int32()),
            "age": pa.array([20 + i % 60 for i in range(rows)], pa.int16()),
            "visit": visits,
            "poor": [i % 4 == 0 for i in range(rows)],
            "remark": [f"备注{i}" for i in range(rows)],
        }
    )


def _propose(table: pa.Table | list[pa.RecordBatch]) -> DatasetProfile:
    return profile_from_table(
        table,
        semantics={"name": "person_name", "id_number": "id_number", "income": "measure"},
        public_key_sets={"town": ["城关镇", "青石镇", "偏岭乡", "东河镇"]},
        sensitive_columns={"name", "id_number", "income"},
        name="survey",
    )


def test_profile_json_holds_no_sensitive_or_rare_value() -> None:
    text = json.dumps(_propose(_real_table()).to_dict(), ensure_ascii=False)
    for planted in (PLANTED_NAME, PLANTED_ID, "987654", PLANTED_RARE_VILLAGE, str(PLANTED_RARE_CODE), "张伟"):
        assert planted not in text, planted


def test_sensitive_columns_keep_only_type_semantic_and_null_rate() -> None:
    profile = _propose(_real_table())
    income = profile.column("income")
    assert (income.type, income.semantic, income.null_rate) == ("float64", "measure", 0.0)
    assert income.minimum is None and income.maximum is None and income.mean is None
    for name in ("name", "id_number"):
        col = profile.column(name)
        assert col.categories is None and col.minimum is None


def test_non_sensitive_columns_get_ranges_and_frequent_categories() -> None:
    profile = _propose(_real_table())
    assert profile.row_count_hint == 600
    village = profile.column("village")
    assert village.categories == ["和平村", "建设村"] and village.semantic == "category"
    assert village.category_weights is not None and village.category_weights[0] > village.category_weights[1]
    code = profile.column("code")
    assert code.type == "int64" and code.categories == ["1"] and code.null_rate == round(1 / 600, 4)
    assert code.minimum is None and code.maximum is None and code.mean is None  # would reveal 4242
    age = profile.column("age")
    assert (age.type, age.minimum, age.maximum, age.categories) == ("int64", 20.0, 79.0, None)
    assert age.mean == pytest.approx(sum(20 + i % 60 for i in range(600)) / 600)
    visit = profile.column("visit")
    assert (visit.type, visit.minimum, visit.maximum) == ("date", "2024-01-01", "2024-10-26")
    assert profile.column("poor").mean == pytest.approx(0.25)
    assert profile.column("remark").categories is None  # 600 distinct values: free text


def test_public_key_sets_list_the_published_codes_and_hide_small_counts() -> None:
    town = _propose(_real_table()).column("town")
    assert town.categories == ["城关镇", "青石镇", "偏岭乡", "东河镇"]
    weights = town.category_weights
    assert weights is not None
    # 偏岭乡 (5 rows) and 东河镇 (0 rows) are both below the threshold: indistinguishable.
    assert weights[2] == weights[3]
    # frequent codes keep their proportions; every published code keeps a floor share, so all
    # of them appear in dummy data without a weight saying how rare they are
    assert weights[0] / weights[1] == pytest.approx(400 / 195, rel=1e-4)
    assert weights[2] >= KEY_SET_FLOOR / 4 / (1 + KEY_SET_FLOOR)


def test_batches_give_the_same_profile_as_the_table() -> None:
    table = _real_table()
    assert _propose(table.to_batches(max_chunksize=64)) == _propose(table)
    with pytest.raises(ValidationFailed):
        _propose([])


def test_a_proposed_profile_generates_data() -> None:
    profile = DatasetProfile.from_dict(json.loads(json.dumps(_propose(_real_table()).to_dict())))
    table = generate(profile, 1000, seed=3)
    assert set(table.column("village").to_pylist()) == {"和平村", "建设村"}
    assert table.schema.field("age").type == pa.int64()
    assert PLANTED_NAME not in table.column("name").to_pylist()


def test_aware_timestamps_become_naive_utc_bounds() -> None:
    stamps = pa.array(
        [dt.datetime(2024, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8)))] * 60,
        pa.timestamp("us", "UTC"),
    )
    col = profile_from_table(
        pa.table({"at": stamps}), semantics={}, public_key_sets={}, sensitive_columns=set()
    ).column("at")
    assert (col.type, col.minimum) == ("timestamp", "2024-01-01T00:00:00")
    assert generate(DatasetProfile("t", [col]), 5).column("at").to_pylist()[0] == dt.datetime(2024, 1, 1)
