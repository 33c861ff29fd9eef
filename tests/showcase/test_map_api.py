"""The map's HTTP side: public GeoJSON and map data, the status and import API, the import page."""

from __future__ import annotations

import io
import json
import re

from countylab.lab import Lab
from countylab.showcase import cache
from tests.showcase.mapworld import MISSING, build
from tests.support import api_client, audit_actions, browser_login


def test_public_boundaries_are_small_cached_geojson(lab: Lab) -> None:
    build(lab, story=False)
    c = api_client(lab)
    r = c.get("/public/api/map/boundaries/town")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert len(fc["features"]) == 12 and fc["import"]["source"] == "demo"
    assert {"code", "name", "level"} <= set(fc["features"][0]["properties"])
    again = c.get("/public/api/map/boundaries/town", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    villages = c.get("/public/api/map/boundaries/village")
    assert len(villages.json()["features"]) == 250 and len(villages.content) < 300_000
    assert c.get("/public/api/map/boundaries/county").status_code == 422


def test_public_map_data_marks_missing_areas_and_keeps_intervals(lab: Lab) -> None:
    w = build(lab)
    data = api_client(lab).get("/public/api/map").json()
    (stat,) = data["statistics"]
    chart = stat["chart"]
    assert chart["kind"] == "map" and chart["level"] == "town" and chart["source"]["kind"] == "dp"
    assert len(chart["categories"]) == 12
    s = chart["series"][0]
    for code, v, lo, hi in zip(chart["categories"], s["values"], s["low"], s["high"], strict=True):
        if code in MISSING:
            assert v is None and lo is None and hi is None
        else:
            assert v == w.values[code] and lo == v - 4.5 and hi == v + 4.5
    assert chart["category_names"][chart["categories"].index("330729108")] == "竹坞镇"
    page = api_client(lab).get("/public/map")
    assert page.status_code == 200
    assert (
        "各乡镇独居老人（测试）" in page.text and "竹坞镇" in page.text and "data-countylab-map" in page.text
    )
    assert "/static/map.js" in page.text and "/static/vendor/echarts.min.js" in page.text


def test_status_and_import_api_need_showcase_manage(lab: Lab) -> None:
    w = build(lab, story=False)
    assert api_client(lab, w.developer).get("/api/maps").status_code == 403
    op = api_client(lab, w.operator)
    st = op.get("/api/maps").json()
    assert st["levels"]["town"]["areas"] == 12 and st["levels"]["village"]["areas"] == 250
    assert st["points"] == {"air_quality": 8, "traffic_counts": 20}
    fc = op.get("/public/api/map/boundaries/town").json()
    fc["features"] = fc["features"][:3]
    files = {"file": ("towns.geojson", json.dumps(fc).encode(), "application/geo+json")}
    denied = api_client(lab, w.developer).post("/api/maps/import", files=files, data={"level": "town"})
    assert denied.status_code == 403
    r = op.post("/api/maps/import", files=files, data={"level": "town"})
    assert r.status_code == 201, r.text
    assert r.json()["features"] == 3 and len(r.json()["missing_codes"]) == 9
    assert op.get("/api/maps").json()["levels"]["town"]["areas"] == 3
    fc["features"][1]["properties"]["code"] = "330729999"
    bad = op.post(
        "/api/maps/import",
        files={"file": ("t.geojson", json.dumps(fc).encode(), "application/json")},
        data={"level": "town"},
    )
    assert bad.status_code == 422
    body = bad.json()
    assert "第 2 个要素（330729999" in json.dumps(body, ensure_ascii=False)
    assert op.get("/api/maps").json()["levels"]["town"]["areas"] == 3  # nothing of the bad file
    assert ("map.import", "mapop", "ok") in audit_actions(lab)


def test_import_page_lists_problems_and_flashes_success(lab: Lab) -> None:
    build(lab, story=False)
    c = api_client(lab)
    csrf = browser_login(c, "mapop")
    page = c.get("/maps")
    assert page.status_code == 200 and 'id="map-import-form"' in page.text
    fc = c.get("/public/api/map/boundaries/town").json()
    fc["features"][0]["geometry"] = {"type": "Point", "coordinates": [119.6, 29.1]}
    bad = c.post(
        "/maps/import",
        data={"csrf_token": csrf, "level": "town", "code_property": "code", "name_property": "name"},
        files={"file": ("bad.geojson", io.BytesIO(json.dumps(fc).encode()), "application/json")},
    )
    assert bad.status_code == 400
    assert 'id="import-problems"' in bad.text and "禾城街道" in bad.text and "不是面" in bad.text
    del fc["features"][0]
    ok = c.post(
        "/maps/import",
        data={"csrf_token": csrf, "level": "town"},
        files={"file": ("good.geojson", io.BytesIO(json.dumps(fc).encode()), "application/json")},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/maps"
    after = c.get("/maps")
    assert re.search(r'data-areas="11"', after.text)
    cache.clear()
