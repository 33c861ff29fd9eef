"""Profiles round-trip through JSON and refuse what the generator could not honour."""

from __future__ import annotations

import json
from typing import Any

import pytest

from countylab.dummy import ColumnProfile, DatasetProfile
from countylab.errors import ValidationFailed
from tests.dummy.dummy_profiles import care_profile, households_profile, residents_profile


@pytest.mark.parametrize("factory", [households_profile, residents_profile, care_profile])
def test_profiles_round_trip_through_json(factory: Any) -> None:
    profile = factory()
    text = json.dumps(profile.to_dict(), ensure_ascii=False, allow_nan=False)
    again = DatasetProfile.from_dict(json.loads(text))
    assert again == profile
    assert again.arrow_schema() == profile.arrow_schema()


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"type": "decimal"}, "type"),
        ({"semantic": "passport"}, "semantic"),
        ({"type": "int64", "semantic": "id_number"}, "semantic"),
        ({"type": "float64", "semantic": "bank_card"}, "semantic"),
        ({"null_rate": 1.5}, "null_rate"),
        ({"distribution": "poisson"}, "distribution"),
        ({"type": "int64", "minimum": 5, "maximum": 1}, "range"),
        ({"type": "date", "minimum": "not a date"}, "minimum"),
        ({"type": "float64", "maximum": float("inf")}, "maximum"),
        ({"categories": []}, "categories"),
        ({"type": "int64", "categories": ["1", "x"]}, "categories"),
        ({"categories": ["a", "b"], "category_weights": [1.0]}, "category_weights"),
        ({"categories": ["a"], "category_weights": [-1.0]}, "category_weights"),
        ({"category_weights": [1.0]}, "category_weights"),
        ({"foreign_key": "no_dot"}, "foreign_key"),
        ({"semantic": "id_number", "id_prefix": "34A"}, "id_prefix"),
        ({"semantic": "mobile", "id_prefix": "23"}, "id_prefix"),
        ({"semantic": "uscc", "id_prefix": "9I"}, "id_prefix"),
        ({"type": "float64", "distribution": "lognormal", "minimum": 10, "mean": 5}, "mean"),
    ],
)
def test_bad_columns_are_refused_with_a_reason(kwargs: dict[str, Any], reason: str) -> None:
    args: dict[str, Any] = {"name": "c", "type": "string"} | kwargs
    with pytest.raises(ValidationFailed) as caught:
        ColumnProfile(**args)
    assert caught.value.details["reason"] == reason
    assert caught.value.details["column"] == "c"
    assert caught.value.message_zh.startswith("列 c")


def test_bad_datasets_are_refused() -> None:
    col = ColumnProfile("a", "int64")
    with pytest.raises(ValidationFailed):
        DatasetProfile("d", [col, ColumnProfile("a", "string")])
    with pytest.raises(ValidationFailed):
        DatasetProfile("d", [col], primary_key=["missing"])
    with pytest.raises(ValidationFailed):
        DatasetProfile("d", [])
    with pytest.raises(ValidationFailed):
        DatasetProfile.from_dict({"name": "d", "columns": [{"name": "a", "type": "int64", "colour": "red"}]})
    with pytest.raises(ValidationFailed):
        DatasetProfile.from_dict({"format": 99, "name": "d", "columns": []})
    with pytest.raises(ValidationFailed):
        DatasetProfile.from_dict({"name": "d", "columns": [{"type": "int64"}]})
