"""A 花名册 through the API: staged with its detected layout, committed with the confirmed
header, identifiers and types; bad cells named by sheet, row and column; nothing half-written."""

from __future__ import annotations

import pytest

from countylab.catalog import service as catalog
from tests.excel.rosters import HEADERS, PEOPLE, roster_csv_gbk, roster_empty_header_cell, roster_xlsx
from tests.support import api_client, build_lab, create_user


@pytest.fixture
def world(tmp_path):
    lab = build_lab(tmp_path)
    provider = create_user(lab, "provider", ["provider"], org="县民政局")
    c = api_client(lab, provider)
    did = c.post("/api/datasets", json={"name": "dibao", "title": "低保对象花名册"}).json()["id"]
    yield {"lab": lab, "c": c, "id": did}
    lab.close()


def _stage(c, did, name, data, **form):
    r = c.post(f"/api/datasets/{did}/uploads", files={"file": (name, data)}, data=form)
    assert r.status_code == 201, r.text
    return r.json()


def test_roster_xlsx_staged_then_committed_with_pinyin_names_and_titles(world):
    c, did, lab = world["c"], world["id"], world["lab"]
    staged = _stage(c, did, "低保花名册.xlsx", roster_xlsx())
    layout = staged["layout"]
    assert layout["header_rows"] == [3, 4] and layout["sheet"] == "低保花名册"
    assert [col["header"] for col in layout["columns"]] == HEADERS
    assert {r["row"]: r["reason"] for r in layout["rows"] if r["role"] == "skip"}[10] == "total"
    names = staged["suggested_names"]
    assert names["公民身份号码"] == "gongminshenfenhaoma" and names["出生日期"] == "chushengriqi"
    assert {c["name"]: c["type"] for c in staged["schema"]["columns"]}["出生日期"] == "date"
    with lab.read() as s:
        assert catalog.get_dataset(s, did).current_version is None  # nothing written yet
    r = c.post(
        f"/api/datasets/{did}/uploads/{staged['upload_id']}/commit",
        json={"names": names},
    )
    assert r.status_code == 201, r.text
    assert r.json()["row_count"] == len(PEOPLE)
    with lab.read() as s:
        cols = {col.name: (col.title, col.type) for col in catalog.columns(s, did)}
    assert cols["xingming"] == ("姓名", "string")
    assert cols["chushengriqi"] == ("出生日期", "date")
    assert cols["baozhangjine_yuan"] == ("保障金额（元）", "float64")
    assert cols["shouji"][1] == "string"  # mobile numbers are text, even without the override


def test_gbk_csv_roster_one_step(world):
    r = world["c"].post(
        f"/api/datasets/{world['id']}/versions", files={"file": ("花名册.csv", roster_csv_gbk())}
    )
    assert r.status_code == 201, r.text
    assert r.json()["row_count"] == len(PEOPLE)
    with world["lab"].read() as s:
        assert [col.name for col in catalog.columns(s, world["id"])] == HEADERS


def test_empty_header_cell_is_named_not_refused(world):
    staged = _stage(world["c"], world["id"], "名单.xlsx", roster_empty_header_cell())
    assert staged["layout"]["columns"][3] == {"header": "列4", "generated": True}
    assert staged["suggested_names"]["列4"] == "col_4"


def test_chosen_header_row_and_skip_rows_in_the_api(world):
    c, did = world["c"], world["id"]
    staged = _stage(c, did, "低保花名册.xlsx", roster_xlsx(), header_row="4", skip_rows="5-6")
    assert staged["layout"]["header_rows"] == [4] and staged["layout"]["skip_rows"] == [5, 6]
    r = c.post(
        f"/api/datasets/{did}/uploads/{staged['upload_id']}/commit", json={"header_row": 3, "skip_rows": [5]}
    )
    assert r.status_code == 201, r.text
    assert r.json()["row_count"] == len(PEOPLE) - 1


def test_bad_cell_names_sheet_row_and_column_and_leaves_no_trace(world):
    c, did, lab = world["c"], world["id"], world["lab"]
    staged = _stage(c, did, "低保花名册.xlsx", roster_xlsx(bad_date_at=2))
    # 出生日期 of row 6 is text: inferred as string; insist on date, as the clerk would
    r = c.post(
        f"/api/datasets/{did}/uploads/{staged['upload_id']}/commit",
        json={"names": staged["suggested_names"], "schema_override": {"出生日期": "date"}},
    )
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert "工作表“低保花名册”第 6 行" in err["message"] and "“出生日期”" in err["message"]
    assert err["details"]["row"] == 6 and err["details"]["sheet"] == "低保花名册"
    en = c.post(
        f"/api/datasets/{did}/versions",
        files={"file": ("x.xlsx", roster_xlsx(bad_date_at=2))},
        headers={"Accept-Language": "en"},
    )
    assert en.status_code == 201  # without an override the column is text: accepted as text
    with lab.read() as s:
        assert [v.version for v in catalog.versions(s, did)] == [1]


def test_xls_roster_through_the_api(world):
    """An .xls from WPS: same layout detection, dates arrive as dates."""
    from tests.excel.rosters import roster_xls

    c, did, lab = world["c"], world["id"], world["lab"]
    staged = _stage(c, did, "低保花名册.xls", roster_xls())
    assert staged["format"] == "xls" and staged["layout"]["header_rows"] == [3, 4]
    assert [col["header"] for col in staged["layout"]["columns"]] == HEADERS
    r = c.post(
        f"/api/datasets/{did}/uploads/{staged['upload_id']}/commit", json={"names": staged["suggested_names"]}
    )
    assert r.status_code == 201, r.text
    assert r.json()["row_count"] == len(PEOPLE)
    with lab.read() as s:
        types = {col.name: col.type for col in catalog.columns(s, did)}
    assert types["chushengriqi"] == "date" and types["nianling"] == "int64" and types["shouji"] == "string"


def test_plain_xls_and_a_dataset_registered_by_title_only(world):
    import io

    import xlwt

    c = world["c"]
    made = c.post("/api/datasets", json={"name": "", "title": "高龄津贴名单"})
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "gaolingjintiemingdan"
    again = c.post("/api/datasets", json={"title": "高龄津贴名单"})
    assert again.status_code == 201 and again.json()["name"] == "gaolingjintiemingdan_2"
    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet("Sheet1")
    for col, text in enumerate(["姓名", "年龄"]):
        ws.write(0, col, text)
    for i, (name, *_rest) in enumerate(PEOPLE, start=1):
        ws.write(i, 0, name)
        ws.write(i, 1, PEOPLE[i - 1][4])
    buf = io.BytesIO()
    book.save(buf)
    r = c.post(f"/api/datasets/{made.json()['id']}/versions", files={"file": ("名单.xls", buf.getvalue())})
    assert r.status_code == 201, r.text
    assert r.json()["row_count"] == len(PEOPLE)


def test_next_months_roster_fits_the_columns_by_their_titles(world):
    """The second upload of a roster keeps the pinyin columns: headers match the titles."""
    c, did, lab = world["c"], world["id"], world["lab"]
    first = _stage(c, did, "十一月.xlsx", roster_xlsx())
    r = c.post(
        f"/api/datasets/{did}/uploads/{first['upload_id']}/commit", json={"names": first["suggested_names"]}
    )
    assert r.status_code == 201, r.text
    second = _stage(c, did, "十二月.xlsx", roster_xlsx(PEOPLE[:3]))
    assert second["suggested_names"]["出生日期"] == "chushengriqi"
    r = c.post(f"/api/datasets/{did}/uploads/{second['upload_id']}/commit", json={"mode": "append"})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    one_step = c.post(f"/api/datasets/{did}/versions", files={"file": ("gbk.csv", roster_csv_gbk())})
    assert one_step.status_code == 201, one_step.text
    with lab.read() as s:
        ds = catalog.get_dataset(s, did)
        assert ds.row_count == len(PEOPLE) and ds.current_version == 3
        assert "xingming" in [col.name for col in catalog.columns(s, did)]
