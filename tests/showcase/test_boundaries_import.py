"""Importing a county's own boundaries: GeoJSON and zipped Shapefile, all or nothing, every bad
feature named by position, code and name."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
import shapefile
from sqlalchemy import func, select

from countylab.catalog import service as catalog
from countylab.errors import PermissionDenied, ValidationFailed
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM, Principal
from countylab.lab import Lab
from countylab.showcase.boundaries_import import import_boundaries
from countylab.showcase.maps import boundaries
from countylab.storage.map_models import MapArea, MapImport
from countylab.storage.models import User
from tests.support import audit_actions, create_user

TOWNS = {"330729001": "禾城街道", "330729002": "青溪街道", "330729101": "双溪镇"}
SQUARES = {  # three neighbouring unit squares around 119.6°E 29.1°N
    "330729001": [(119.5, 29.0), (119.6, 29.0), (119.6, 29.1), (119.5, 29.1), (119.5, 29.0)],
    "330729002": [(119.6, 29.0), (119.7, 29.0), (119.7, 29.1), (119.6, 29.1), (119.6, 29.0)],
    "330729101": [(119.5, 29.1), (119.7, 29.1), (119.7, 29.2), (119.5, 29.2), (119.5, 29.1)],
}
BOWTIE = [(119.5, 29.0), (119.6, 29.1), (119.6, 29.0), (119.5, 29.1), (119.5, 29.0)]


def _lab(lab: Lab) -> Principal:
    uid = create_user(lab, "op", ["operator"])
    with lab.tx() as s:
        catalog.upsert_key_set(
            s, SYSTEM, name="towns.town_code", title="乡镇", values=list(TOWNS), labels=TOWNS
        )
        return ids.principal_for(s, s.get_one(User, uid), "test")


def _feature(
    code: Any, ring: list[tuple[float, float]] | None, name: str = "", kind: str = "Polygon"
) -> dict[str, Any]:
    props = {"name": name} if code is None else {"code": code, "name": name}
    geom = None if ring is None else {"type": kind, "coordinates": [[list(p) for p in ring]]}
    return {"type": "Feature", "properties": props, "geometry": geom}


def _geojson(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}, ensure_ascii=False).encode()


def _good() -> bytes:
    return _geojson(*(_feature(c, SQUARES[c], TOWNS[c]) for c in TOWNS))


def _shapefile_zip(rows: list[tuple[str, str, list[tuple[float, float]]]], prj: str | None = None) -> bytes:
    shp, shx, dbf = io.BytesIO(), io.BytesIO(), io.BytesIO()
    with shapefile.Writer(shp=shp, shx=shx, dbf=dbf, shapeType=shapefile.POLYGON, encoding="utf-8") as w:
        w.field("XZQDM", "C", size=12)
        w.field("XZQMC", "C", size=40)
        for code, name, ring in rows:
            w.poly([list(reversed(ring))])  # shapefile outer rings run clockwise
            w.record(code, name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("towns.shp", shp.getvalue())
        z.writestr("towns.shx", shx.getvalue())
        z.writestr("towns.dbf", dbf.getvalue())
        z.writestr("towns.cpg", "UTF-8")
        if prj is not None:
            z.writestr("towns.prj", prj)
    return out.getvalue()


def _count(lab: Lab) -> tuple[int, int]:
    with lab.read() as s:
        return (
            s.execute(select(func.count()).select_from(MapImport)).scalar_one(),
            s.execute(select(func.count()).select_from(MapArea)).scalar_one(),
        )


def test_good_geojson_is_stored_matched_and_audited(lab: Lab) -> None:
    op = _lab(lab)
    with lab.tx() as s:
        r = import_boundaries(s, op, level="town", data=_good(), filename="towns.geojson")
    assert r.features == 3 and r.missing_codes == []
    with lab.read() as s:
        fc = boundaries(s, "town")
    assert [f["properties"]["code"] for f in fc["features"]] == sorted(TOWNS)
    assert fc["features"][0]["properties"]["name"] == "禾城街道"
    assert fc["import"]["source"] == "geojson"
    assert ("map.import", "op", "ok") in audit_actions(lab)


def test_every_bad_feature_is_named_and_nothing_is_stored(lab: Lab) -> None:
    op = _lab(lab)
    with lab.tx() as s:
        import_boundaries(s, op, level="town", data=_good(), filename="first.geojson")
    before = _count(lab)
    data = _geojson(
        _feature("330729001", SQUARES["330729001"], "禾城街道"),
        _feature("330729999", SQUARES["330729002"], "外县镇"),  # 2 unknown code
        _feature("330729001", SQUARES["330729101"], "重复镇"),  # 3 duplicate
        _feature(None, SQUARES["330729101"], "无码村"),  # 4 missing code
        _feature("330729002", BOWTIE, "青溪街道"),  # 5 self-intersection
        _feature("330729101", None, "双溪镇"),  # 6 empty
        {
            "type": "Feature",
            "properties": {"code": "330729101", "name": "点"},
            "geometry": {"type": "Point", "coordinates": [119.6, 29.1]},
        },  # 7 wrong type
        _feature(
            "330729101",
            [(500000.0, 3200000.0), (500100.0, 3200000.0), (500100.0, 3200100.0), (500000.0, 3200000.0)],
            "投影镇",
        ),  # 8 projected numbers
    )
    with lab.tx() as s, pytest.raises(ValidationFailed) as e:
        import_boundaries(s, op, level="town", data=data, filename="bad.geojson")
    err = e.value
    reasons = {(p["index"], p["reason"]) for p in err.details["problems"]}
    assert {
        (2, "unknown_code"),
        (3, "duplicate_code"),
        (4, "missing_code"),
        (5, "invalid"),
        (6, "empty"),
        (7, "wrong_type"),
        (8, "coordinate_range"),
    } <= reasons
    for needle in (
        "第 2 个要素（330729999 “外县镇”）",
        "不是本县",
        "与第 1 个要素重复",
        "第 4 个要素（“无码村”）",
        "自相交",
        "第 6 个要素",
        "几何类型为 Point",
        "坐标超出经纬度范围",
    ):
        assert needle in err.message_zh, needle
    for needle in (
        "feature 2 (330729999 “外县镇”)",
        "not one of the county's",
        "repeats feature 1",
        "Self-intersection",
        "geometry type Point",
        "out of the lon/lat range",
    ):
        assert needle in err.message_en, needle
    assert _count(lab) == before  # the first import stands; nothing of the bad file remains
    with lab.read() as s:
        assert boundaries(s, "town")["import"]["source"] == "geojson"


def test_chosen_code_property_and_missing_property_named(lab: Lab) -> None:
    op = _lab(lab)
    data = json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"XZQDM": c},
                    "geometry": {"type": "Polygon", "coordinates": [SQUARES[c]]},
                }
                for c in ("330729001", "330729002")
            ],
        }
    ).encode()
    with lab.tx() as s, pytest.raises(ValidationFailed) as e:
        import_boundaries(s, op, level="town", data=data, filename="t.geojson")
    assert "code" in e.value.message_en and "XZQDM" in e.value.message_en
    with lab.tx() as s:
        r = import_boundaries(s, op, level="town", data=data, filename="t.geojson", code_property="XZQDM")
    assert r.features == 2 and r.missing_codes == ["330729101"]
    with lab.read() as s:  # names come from the key set when the file has none
        assert [f["properties"]["name"] for f in boundaries(s, "town")["features"]] == [
            "禾城街道",
            "青溪街道",
        ]


def test_shapefile_zip_is_read_and_its_bad_feature_named(lab: Lab) -> None:
    op = _lab(lab)
    wgs84 = 'GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]]]'
    good = _shapefile_zip([(c, TOWNS[c], SQUARES[c]) for c in TOWNS], prj=wgs84)
    with lab.tx() as s:
        r = import_boundaries(
            s, op, level="town", data=good, filename="towns.zip", code_property="XZQDM", name_property="XZQMC"
        )
    assert r.features == 3
    with lab.read() as s:
        fc = boundaries(s, "town", full=True)
    assert {f["properties"]["name"] for f in fc["features"]} == set(TOWNS.values())
    assert fc["import"]["source"] == "shapefile"
    bad = _shapefile_zip(
        [("330729001", "禾城街道", SQUARES["330729001"]), ("330729777", "错码镇", SQUARES["330729002"])]
    )
    with lab.tx() as s, pytest.raises(ValidationFailed) as e:
        import_boundaries(
            s, op, level="town", data=bad, filename="bad.zip", code_property="XZQDM", name_property="XZQMC"
        )
    assert "第 2 个要素（330729777 “错码镇”）" in e.value.message_zh


def test_projected_prj_is_refused_saying_so(lab: Lab) -> None:
    op = _lab(lab)
    prj = 'PROJCS["CGCS2000_3_Degree_GK_CM_120E",GEOGCS["GCS_China_Geodetic_Coordinate_System_2000"]]'
    data = _shapefile_zip([(c, TOWNS[c], SQUARES[c]) for c in TOWNS], prj=prj)
    with lab.tx() as s, pytest.raises(ValidationFailed) as e:
        import_boundaries(s, op, level="town", data=data, filename="towns.zip", code_property="XZQDM")
    assert "投影坐标系" in e.value.message_zh and "CGCS2000_3_Degree_GK_CM_120E" in e.value.message_zh
    assert "reproject" in e.value.message_en
    assert _count(lab) == (0, 0)


def test_zip_without_dbf_and_not_a_collection_are_refused(lab: Lab) -> None:
    op = _lab(lab)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("a.shp", b"x")
        z.writestr("a.shx", b"x")
    with lab.tx() as s, pytest.raises(ValidationFailed, match="dbf"):
        import_boundaries(s, op, level="town", data=out.getvalue(), filename="a.zip")
    with lab.tx() as s, pytest.raises(ValidationFailed, match="FeatureCollection"):
        import_boundaries(s, op, level="town", data=b'{"type": "Feature"}', filename="a.geojson")


def test_only_showcase_managers_import(lab: Lab) -> None:
    _lab(lab)
    uid = create_user(lab, "dev", ["developer"])
    with lab.tx() as s:
        dev = ids.principal_for(s, s.get_one(User, uid), "test")
    with lab.tx() as s, pytest.raises(PermissionDenied):
        import_boundaries(s, dev, level="town", data=_good(), filename="t.geojson")


def test_gbk_geojson_is_read(lab: Lab) -> None:
    op = _lab(lab)
    data = _good().decode("utf-8").encode("gbk")
    with lab.tx() as s:
        assert import_boundaries(s, op, level="town", data=data, filename="gbk.geojson").features == 3
    with lab.read() as s:
        assert {f["properties"]["name"] for f in boundaries(s, "town")["features"]} == set(TOWNS.values())
