"""The choropleth contract: every area of a level, missing ones marked, unknown codes refused."""

from __future__ import annotations

import pytest

from countylab.catalog import service as catalog
from countylab.errors import ValidationFailed
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.showcase.chartspec import Source, SourceKind
from countylab.showcase.maps import choropleth

TOWNS = {"330729001": "禾城街道", "330729002": "青溪街道", "330729101": "双溪镇"}


def _key_set(lab: Lab) -> None:
    with lab.tx() as s:
        catalog.upsert_key_set(
            s, SYSTEM, name="towns.town_code", title="乡镇", values=list(TOWNS), labels=TOWNS
        )


def test_every_area_is_a_category_and_missing_ones_are_none(lab: Lab) -> None:
    _key_set(lab)
    with lab.read() as s:
        chart = choropleth(
            s,
            level="town",
            values={"330729001": 12.0, "330729101": 3.0},
            low={"330729001": 9.0, "330729101": 0.0},
            high={"330729001": 15.0, "330729101": 7.5},
            title="独居老人",
            unit="人",
            source=Source(SourceKind.dp, "差分隐私统计", "metric:1"),
        )
    d = chart.to_dict()
    assert d["kind"] == "map" and d["level"] == "town"
    assert d["categories"] == list(TOWNS)
    assert d["category_names"] == list(TOWNS.values())
    assert d["series"][0]["values"] == [12.0, None, 3.0]
    assert d["series"][0]["low"] == [9.0, None, 0.0]
    assert d["series"][0]["high"] == [15.0, None, 7.5]
    assert d["note"] == "95% 区间"
    assert [n for n, _, _ in chart.numbers()] == ["禾城街道 · 独居老人", "双溪镇 · 独居老人"]


def test_unknown_code_is_refused_by_name(lab: Lab) -> None:
    _key_set(lab)
    with lab.read() as s, pytest.raises(ValidationFailed) as e:
        choropleth(
            s,
            level="town",
            values={"330729999": 1.0},
            title="t",
            source=Source(SourceKind.release, "出域编号 R-1", "release:1"),
        )
    assert "330729999" in e.value.message_zh and "330729999" in e.value.message_en


def test_dp_value_without_interval_is_refused(lab: Lab) -> None:
    _key_set(lab)
    with lab.read() as s, pytest.raises(ValidationFailed):
        choropleth(s, level="town", values={"330729001": 1.0}, title="t", source=Source(SourceKind.dp, "dp"))


def test_unknown_level_is_refused(lab: Lab) -> None:
    with lab.read() as s, pytest.raises(ValidationFailed):
        choropleth(s, level="county", values={}, title="t", source=Source(SourceKind.open, "o"))
