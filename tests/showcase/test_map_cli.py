"""``countylab map import`` and ``countylab map status`` against a real server (uvicorn in a thread),
through the SDK: a good zipped Shapefile is imported, a bad GeoJSON is refused naming the feature."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import shapefile

from countylab.cli import main
from countylab.lab import Lab
from tests.browser import live_server
from tests.showcase.mapworld import build
from tests.support import token_for


def _shapefile_zip(features: list[dict[str, object]]) -> bytes:
    shp, shx, dbf = io.BytesIO(), io.BytesIO(), io.BytesIO()
    with shapefile.Writer(shp=shp, shx=shx, dbf=dbf, shapeType=shapefile.POLYGON, encoding="utf-8") as w:
        w.field("XZQDM", "C", size=12)
        w.field("XZQMC", "C", size=40)
        for f in features:
            geom = f["geometry"]
            assert isinstance(geom, dict)
            w.poly([list(reversed(geom["coordinates"][0]))])
            props = f["properties"]
            assert isinstance(props, dict)
            w.record(props["code"], props["name"])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for ext, buf in (("shp", shp), ("shx", shx), ("dbf", dbf)):
            z.writestr(f"towns.{ext}", buf.getvalue())
        z.writestr("towns.cpg", "UTF-8")
    return out.getvalue()


def test_cli_imports_a_shapefile_and_names_the_bad_feature(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    w = build(lab, story=False)
    from countylab.showcase.maps import boundaries

    with lab.read() as s:
        fc = boundaries(s, "town", full=True)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("COUNTYLAB_LANG", "zh-CN")
    monkeypatch.setenv("COUNTYLAB_TOKEN", token_for(lab, w.operator))
    good = tmp_path / "towns.zip"
    good.write_bytes(_shapefile_zip(fc["features"][:5]))
    fc["features"][3]["properties"]["code"] = "330729888"
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    with live_server(lab) as url:
        monkeypatch.setenv("COUNTYLAB_URL", url)
        rc = main(["map", "import", str(good), "--level", "town", "--code-property", "XZQDM",
                   "--name-property", "XZQMC"])  # fmt: skip
        assert rc == 0, capsys.readouterr()
        assert "5 features" in capsys.readouterr().out
        assert main(["map", "import", str(bad), "--level", "town"]) == 1
        err = capsys.readouterr().err
        assert "第 4 个要素（330729888" in err and "unknown_code" in err
        assert main(["map", "status"]) == 0
        shown = capsys.readouterr().out
        assert "shapefile" in shown and "towns.zip" in shown
