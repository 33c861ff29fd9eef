"""Live open data: the newest hour per station and junction, only from confirmed 一般1级 feeds
whose policy lets rows out; a regraded or denied feed leaves the public pages."""

from __future__ import annotations

import csv
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from countylab.lab import Lab
from countylab.showcase import cache, open_data
from countylab.storage.models import Dataset
from countylab.web.app import create_app
from tests.showcase.portal_fixtures import demo_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = demo_lab(tmp_path_factory.mktemp("open-data"))
    yield lab
    lab.close()


def _newest_in_seed(lab: Lab, name: str, key: str, place: str) -> dict[str, tuple[str, str]]:
    newest: dict[str, tuple[str, str]] = {}
    with (lab.settings.seed_dir / f"{name}.csv").open(encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            if row[key] not in newest or row["hour"] > newest[row[key]][0]:
                newest[row[key]] = (row["hour"], row[place])
    return newest


def test_newest_hour_per_station_and_junction(lab: Lab) -> None:
    cache.clear()
    feeds = {r.dataset: r for r in open_data.latest(lab)}
    assert set(feeds) == {"air_quality", "traffic_counts"}
    for name, key, place in (
        ("air_quality", "station_id", "station_name"),
        ("traffic_counts", "junction_id", "junction_name"),
    ):
        seed = _newest_in_seed(lab, name, key, place)
        rows = feeds[name].rows
        assert len(rows) == len(seed)  # one row per station or junction
        assert sorted(r["place"] for r in rows) == sorted(p for _h, p in seed.values())
        assert {r["hour"][:13] for r in rows} == {h.replace("T", " ")[:13] for h, _p in seed.values()}
    assert "aqi" in feeds["air_quality"].rows[0] and "vehicles" in feeds["traffic_counts"].rows[0]


def _set(lab: Lab, name: str, **values: object) -> dict[str, object]:
    with lab.tx() as s:
        ds = s.execute(select(Dataset).where(Dataset.name == name)).scalar_one()
        before = {k: getattr(ds, k) for k in values}
        for k, v in values.items():
            setattr(ds, k, v)
    return before


@pytest.mark.parametrize(
    "change",
    [{"grade": "general_2"}, {"grade_confirmed": False}, {"policy_overrides": {"deny": ["download_rows"]}}],
    ids=["regraded", "unconfirmed", "denied"],
)
def test_a_feed_that_is_not_open_leaves_the_public_pages(lab: Lab, change: dict[str, object]) -> None:
    client = TestClient(create_app(lab), raise_server_exceptions=False)
    cache.clear()
    station = open_data.latest(lab)[0].rows[0]["place"]
    assert station in client.get("/public/open-data").text
    before = _set(lab, "air_quality", **change)
    try:
        cache.clear()
        assert [r.dataset for r in open_data.latest(lab)] == ["traffic_counts"]
        for path in ("/public/open-data", "/public", "/public/api/open-data"):
            assert station not in client.get(path).text, path
    finally:
        _set(lab, "air_quality", **before)
        cache.clear()


def test_only_the_two_feeds_and_never_another_grade(lab: Lab) -> None:
    with lab.read() as s:
        grades = {d.name: (d.grade, open_data.is_open(d)) for d in s.execute(select(Dataset)).scalars()}
    assert not grades["residents"][1] and not grades["elderly_care_records"][1]
    assert all(grade == "general_1" for grade, is_open in grades.values() if is_open)


def test_readings_are_cached_for_a_minute(lab: Lab) -> None:
    cache.clear()
    first = open_data.latest(lab)
    before = _set(lab, "air_quality", grade="general_2")
    try:
        assert open_data.latest(lab) is first  # within REFRESH_S the page does not re-read
    finally:
        _set(lab, "air_quality", **before)
        cache.clear()
    assert open_data.REFRESH_S == 60.0
