"""Determinism, sizes, the manifest and the encodings of the generated files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from countylab.demo import Manifest, generate_county
from countylab.demo.generator import FULL, SIZES
from countylab.errors import UserError

EXPECTED = {
    "towns",
    "villages",
    "households",
    "residents",
    "enterprises",
    "enterprises_gbk",
    "farmland_plots",
    "elderly_care_records",
    "traffic_counts",
    "air_quality",
}


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    generate_county(tmp_path / "a", size="tiny")
    generate_county(tmp_path / "b", size="tiny")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) == len(EXPECTED) + 1
    for name in a:
        assert a[name] == b[name], name


def test_other_seed_gives_other_people(tmp_path: Path, tiny) -> None:
    generate_county(tmp_path, size="tiny", seed=1)
    assert (tmp_path / "residents.csv").read_bytes() != (tiny.root / "residents.csv").read_bytes()
    # the map is the same at every seed's size, only the names of villages are drawn
    assert (tmp_path / "towns.csv").read_text().splitlines()[0] == (
        tiny.root / "towns.csv"
    ).read_text().splitlines()[0]


@pytest.mark.parametrize("fixture", ["tiny", "small"])
def test_row_counts_follow_size(fixture: str, request: pytest.FixtureRequest) -> None:
    county = request.getfixturevalue(fixture)
    m = county.manifest
    scale = SIZES[fixture]
    rows = {d.name: d.rows for d in m.datasets}
    assert set(rows) == EXPECTED
    assert rows["towns"] == 12 and rows["villages"] == 250
    assert rows["households"] == round(FULL["households"] * scale)
    assert 2.4 * rows["households"] < rows["residents"] < 3.1 * rows["households"]
    assert rows["enterprises"] == rows["enterprises_gbk"] == round(FULL["enterprises"] * scale)
    assert rows["farmland_plots"] == 2 * round(FULL["plots"] * scale)
    target = FULL["care"] * scale
    assert 0.8 * target < rows["elderly_care_records"] < 1.2 * target
    days = max(1, round(FULL["days"] * scale))
    assert rows["traffic_counts"] == 20 * 24 * days and rows["air_quality"] == 8 * 24 * days
    for d in m.datasets:
        assert len(county.df(d.name)) == d.rows, d.name


def test_scale_keyword_and_bad_size(tmp_path: Path) -> None:
    m = generate_county(tmp_path, scale=0.002)
    assert m.dataset("households").rows == 220 and m.scale == 0.002 and m.size == "custom"
    with pytest.raises(UserError):
        generate_county(tmp_path, size="huge")
    with pytest.raises(UserError):
        generate_county(tmp_path, scale=0)


def test_manifest_checksums_and_columns_match_files(tiny) -> None:
    on_disk = Manifest.from_json(tiny.root / "manifest.json")
    assert on_disk == tiny.manifest
    assert json.loads(on_disk.to_json()) == json.loads(
        (tiny.root / "manifest.json").read_text(encoding="utf-8")
    )
    for d in on_disk.datasets:
        data = (tiny.root / d.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == d.sha256, d.name
        assert list(tiny.df(d.name).columns) == [c.name for c in d.columns]
        assert set(d.primary_key) <= {c.name for c in d.columns}
        assert not tiny.df(d.name).duplicated(d.primary_key).any(), d.name
        if d.privacy_unit != "none":
            assert d.column(d.privacy_unit_column or "").name
        for c in d.columns:
            assert c.type in {"int64", "float64", "string", "date", "timestamp", "bool"}
            assert c.title_zh


def test_manifest_grades_and_semantics(tiny) -> None:
    m = tiny.manifest
    grades = {d.name: d.suggested_grade for d in m.datasets}
    assert grades["residents"] == "general_4" and grades["enterprises"] == "general_2"
    assert grades["traffic_counts"] == grades["air_quality"] == grades["towns"] == "general_1"
    res = m.dataset("residents")
    assert (res.privacy_unit, res.privacy_unit_column, res.department) == ("person", "resident_id", "公安局")
    semantic = {c.name: c.semantic for c in res.columns}
    assert semantic["id_number"] == "id_number" and semantic["mobile"] == "mobile"
    assert semantic["name"] == "person_name" and semantic["resident_id"] == "privacy_unit_id"
    assert res.column("birth_date").type == "date" and res.column("income").type == "int64"
    assert m.dataset("traffic_counts").column("hour").type == "timestamp"
    assert (
        m.dataset("elderly_care_records").column("resident_id").semantic
        == "foreign_key:residents.resident_id"
    )
    ent = m.dataset("enterprises")
    industries = next(k for k in ent.key_sets if k.column == "industry")
    assert industries.values and set(tiny.df("enterprises")["industry"]) <= set(industries.values)
    assert m.dataset("enterprises_gbk").encoding == "gbk"


def test_gbk_export_decodes_to_the_utf8_file(tiny) -> None:
    gbk = (tiny.root / "enterprises_gbk.csv").read_bytes()
    utf8 = (tiny.root / "enterprises.csv").read_bytes()
    assert gbk != utf8  # really re-encoded, Chinese names are present
    assert gbk.decode("gbk") == utf8.decode("utf-8")
    with pytest.raises(UnicodeDecodeError):
        gbk.decode("utf-8")
