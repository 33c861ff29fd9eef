"""Dataset downloads through the API: XLSX and CSV-with-BOM that open with Chinese intact."""

from __future__ import annotations

import csv
import datetime as dt
import io
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook

from countylab.catalog import service as catalog
from tests.support import api_client, audit_actions, build_lab, create_user

CSV = "resident_id,name,age,town\n" + "".join(
    f"R{i:04d},{['张伟', '王芳'][i % 2]},{20 + i},{['城关镇', '青禾镇'][i % 2]}\n" for i in range(1, 31)
)


@pytest.fixture
def world(tmp_path):
    lab = build_lab(tmp_path)
    provider = create_user(lab, "provider", ["provider"], org="县民政局")
    steward = create_user(lab, "steward", ["steward"], org="县大数据中心", kind="platform")
    dev = create_user(lab, "dev", ["developer"], org="康养科技", kind="enterprise")
    c = api_client(lab, provider)
    did = c.post("/api/datasets", json={"name": "residents", "title": "常住人口信息"}).json()["id"]
    r = c.post(f"/api/datasets/{did}/versions", files={"file": ("r.csv", CSV.encode())})
    assert r.status_code == 201, r.text
    with lab.tx() as s:
        for name, title in [("name", "姓名"), ("age", "年龄"), ("town", "乡镇")]:
            col = next(x for x in catalog.columns(s, did) if x.name == name)
            col.title = title
    yield {"lab": lab, "dev": api_client(lab, dev), "steward": api_client(lab, steward), "id": did}
    lab.close()


def _filename(response) -> str:
    return unquote(response.headers["content-disposition"].split("filename*=UTF-8''")[1])


def test_dummy_xlsx_has_chinese_titles_and_a_readable_name(world):
    r = world["dev"].get(f"/api/datasets/{world['id']}/download?format=xlsx&rows=50")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    assert _filename(r) == f"常住人口信息-模拟数据-{today}.xlsx"
    ws = load_workbook(io.BytesIO(r.content)).active
    assert "常住人口信息" in ws["A1"].value and "模拟数据" in ws["A1"].value
    assert [c.value for c in ws[2]] == ["resident_id", "姓名", "年龄", "乡镇"]
    ages = [ws.cell(row=i, column=3).value for i in range(3, 53)]
    assert all(isinstance(a, int) for a in ages if a is not None)
    assert ws.freeze_panes == "A3"


def test_dummy_csv_decodes_with_utf8_sig_and_english_uses_names(world):
    r = world["dev"].get(
        f"/api/datasets/{world['id']}/download?format=csv&rows=20", headers={"Accept-Language": "en"}
    )
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["resident_id", "name", "age", "town"] and len(rows) == 21
    assert _filename(r).startswith("residents-dummy-data-") and _filename(r).endswith(".csv")
    zh = world["dev"].get(f"/api/datasets/{world['id']}/download?format=csv&rows=5&headers=title")
    assert zh.content.decode("utf-8-sig").splitlines()[0] == "resident_id,姓名,年龄,乡镇"
    assert b"\r\n" in zh.content


def test_real_rows_only_for_confirmed_open_data(world):
    did, dev = world["id"], world["dev"]
    refused = dev.get(f"/api/datasets/{did}/download?kind=rows&format=csv")
    assert refused.status_code == 403
    g = world["steward"].put(
        f"/api/datasets/{did}/grade", json={"grade": "general_1", "reason": "公开的名录，经安全委员会审议"}
    )
    assert g.status_code == 200, g.text
    r = dev.get(f"/api/datasets/{did}/download?kind=rows&format=xlsx")
    assert r.status_code == 200, r.text
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws["A1"].value == "常住人口信息"
    names = {ws.cell(row=i, column=2).value for i in range(3, 33)}
    assert names == {"张伟", "王芳"}
    assert "-数据-" in _filename(r)
    # real rows are audited (who, how many, which format); dummy downloads are not
    taken = [e for e in audit_actions(world["lab"]) if e[0] == "dataset.download"]
    assert len(taken) == 1 and taken[0][2] == "ok", taken


def test_too_many_xlsx_rows_is_refused_in_both_languages(world):
    r = world["dev"].get(f"/api/datasets/{world['id']}/download?format=xlsx&rows=500000")
    assert r.status_code == 422
    assert "CSV" in r.text


def test_sdk_download_dummy_and_rows_over_http(world, tmp_path):
    """The SDK saves the same files over a real socket; a Chinese client gets Chinese headers."""
    import countylab_client as cl
    from tests.browser import live_server
    from tests.support import token_for

    lab = world["lab"]
    dev_id = create_user(lab, "dev2", ["developer"], org="康养科技", kind="enterprise")
    with live_server(lab) as url, cl.Client(url, token_for(lab, dev_id)) as client:
        out = client.download_dummy(world["id"], tmp_path / "d.xlsx", rows=10)
        ws = load_workbook(out).active
        assert [c.value for c in ws[2]] == ["resident_id", "姓名", "年龄", "乡镇"]
        out = client.download_dummy(world["id"], tmp_path / "d.csv", format="csv", rows=10, headers="name")
        assert out.read_text(encoding="utf-8-sig").splitlines()[0] == "resident_id,name,age,town"
        with pytest.raises(cl.PermissionDeniedError):
            client.download_rows(world["id"], tmp_path / "r.xlsx")
        with pytest.raises(ValueError):
            client.download_dummy(world["id"], tmp_path / "x.ods", format="ods")
