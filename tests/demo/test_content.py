"""Content checks: valid identifiers, joins that hold, plausible distributions."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd

from countylab.demo.households import MIGRANT_REGIONS
from countylab.identifiers import is_valid_id_number, is_valid_uscc


def test_id_numbers_are_valid_unique_and_agree_with_the_row(small) -> None:
    res = small.df("residents")
    ids = res["id_number"]
    assert ids.map(is_valid_id_number).all()
    assert ids.is_unique
    male_digit = ids.str[16].astype(int) % 2 == 1
    assert ((res["gender"] == "男") == male_digit).all()
    assert (ids.str[6:14] == res["birth_date"].str.replace("-", "")).all()
    assert ids.str[:6].isin(["330729", *MIGRANT_REGIONS]).all()
    assert ((ids.str[:6] == "330729") == (res["hukou_type"] != "外地户口")).all()


def test_age_matches_birth_date_and_pyramid_is_ageing(small) -> None:
    res = small.df("residents")
    as_of = date.fromisoformat(small.manifest.as_of)
    born = pd.to_datetime(res["birth_date"])
    expected = (
        as_of.year - born.dt.year - ((born.dt.month * 100 + born.dt.day) > as_of.month * 100 + as_of.day)
    )
    age = res["age"].astype(int)
    assert (age == expected).all()
    assert 0.20 <= (age >= 60).mean() <= 0.40
    assert 0.05 <= (age < 15).mean() <= 0.25
    old = res[age >= 80]
    assert (old["gender"] == "女").sum() > (old["gender"] == "男").sum()
    assert age.max() <= 100


def test_mobiles_names_and_income(small) -> None:
    res = small.df("residents")
    age = res["age"].astype(int)
    phones = res.loc[res["mobile"] != "", "mobile"]
    assert phones.str.fullmatch(r"1[3-9]\d{9}").all() and phones.is_unique
    assert (res.loc[age < 14, "mobile"] == "").all()
    assert res["name"].str.len().between(2, 3).all()
    assert res["name"].str[0].value_counts().index[0] in {"王", "李", "张"}
    income = res["income"].astype(int)
    assert (income[age < 16] == 0).all() and (income >= 0).all()
    working = income[(age >= 25) & (age < 60) & (income > 0)]
    assert working.mean() > working.median()  # right-skewed


def test_households_join_and_agree(tiny, small) -> None:
    for county in (tiny, small):
        res, hh = county.df("residents"), county.df("households")
        assert res["household_id"].isin(hh["household_id"]).all()
        sizes = res.groupby("household_id").size()
        assert (hh.set_index("household_id")["household_size"].astype(int) == sizes).all()
        assert (hh["lives_alone"] == (hh["household_size"] == "1").map({True: "true", False: "false"})).all()
        heads = res.set_index("resident_id").loc[hh["head_resident_id"]]
        assert (heads["relation_to_head"] == "户主").all()
        assert (heads["household_id"].values == hh["household_id"].values).all()
        assert hh["address"].is_unique
        assert hh["address"].str.match(r"青禾县.+(镇|街道).+(村\d+组\d+号|社区.+号.+室)$").all()
        assert res["village_code"].isin(county.df("villages")["village_code"]).all()
        towns = county.df("towns")
        assert hh["town_code"].isin(towns["town_code"]).all()
        assert towns["population"].astype(int).sum() == len(res)


def test_enterprises_have_valid_unique_uscc(small) -> None:
    ent = small.df("enterprises")
    assert ent["uscc"].map(is_valid_uscc).all() and ent["uscc"].is_unique
    assert ent["name"].is_unique and ent["name"].str.startswith("青禾县").all()
    assert (ent["uscc"].str[2:8] == "330729").all()
    assert ent["town_code"].isin(small.df("towns")["town_code"]).all()
    emp = ent["employees"].astype(int)
    assert emp.min() >= 1 and emp.max() > 20 * emp.median()  # heavy tail
    assert small.df("enterprises_gbk")["uscc"].map(is_valid_uscc).all()


def test_care_records_refer_to_elderly_residents(small) -> None:
    care, res = small.df("elderly_care_records"), small.df("residents").set_index("resident_id")
    assert care["resident_id"].isin(res.index).all()
    assert (res.loc[care["resident_id"], "age"].astype(int) >= 60).all()
    assert care["service_type"].value_counts().index[0] == "助餐"
    assert (care["service_date"] <= small.manifest.as_of).all()


def test_farmland_belongs_to_farming_households(small) -> None:
    plots, hh = small.df("farmland_plots"), small.df("households").set_index("household_id")
    assert plots["household_id"].isin(hh.index).all()
    assert (hh.loc[plots["household_id"], "village_code"].values == plots["village_code"].values).all()
    rice = plots.loc[plots["crop"] == "水稻", "yield_kg_per_mu"].astype(float)
    tea = plots.loc[plots["crop"] == "茶叶", "yield_kg_per_mu"].astype(float)
    assert 350 < rice.median() < 600 and tea.median() < 100
    assert set(plots["year"]) == {"2025", "2026"}


def test_sensor_history_has_daily_shape(small) -> None:
    tr = small.df("traffic_counts")
    hour = pd.to_datetime(tr["hour"])
    weekday = tr[hour.dt.day_of_week < 5]
    h = pd.to_datetime(weekday["hour"]).dt.hour
    veh = weekday["vehicles"].astype(int)
    assert veh[h == 8].mean() > 4 * veh[h == 3].mean()
    air = small.df("air_quality")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:00:00", air["hour"].iloc[0])
    assert (air["aqi"].astype(int) >= 1).all()
