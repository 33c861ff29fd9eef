"""Models by named fields, end to end: the job declares its fields beside the model (one-hot
village), the lab records the input schema from the catalog (key set, steward bounds), the
card shows it, callers send ``{"village": "东岭村", "age": 82}``, the server encodes and the real
sandboxed worker predicts; bad fields get a 422 naming the field and what it allows."""

from __future__ import annotations

import io
import json
from typing import Any

import joblib
import pytest
from sklearn.linear_model import LinearRegression

from countylab.catalog import service as catalog
from countylab.identity.access import SYSTEM
from countylab.serving import schema as sch
from tests.airlock_e2e.conftest import RESIDENTS, World

pytestmark = pytest.mark.needs("sandbox")  # skips with plain pytest; fails under make test

VILLAGES = ["青禾村", "东岭村", "南湾村"]


def _onehot_model() -> bytes:
    """Fitted on [village one-hot ×3, age]: visits grow with age, 东岭村 adds 5."""
    rows = [[1.0 * (v == w) for w in VILLAGES] + [float(age)] for _, _, _, _, v, age in RESIDENTS]
    target = [age / 10 + (5.0 if v == "东岭村" else 0.0) for _, _, _, _, v, age in RESIDENTS]
    buf = io.BytesIO()
    joblib.dump(LinearRegression().fit(rows, target), buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def named(shared_world: World) -> dict[str, Any]:
    world = shared_world
    with world.lab.tx() as s:  # the steward's public key set and bounds: what the schema may say
        catalog.upsert_key_set(
            s, SYSTEM, name="villages", title="村", values=VILLAGES, labels={v: v for v in VILLAGES}
        )
        catalog.set_column(s, SYSTEM, world.dataset_id, "village", key_set="villages")
        catalog.set_column(s, SYSTEM, world.dataset_id, "age", lower=0, upper=110)
    sidecar = {"inputs": [{"name": "village", "encoding": "onehot"}, {"name": "age"}]}
    job = world.make_job(
        {
            "model.joblib": _onehot_model(),
            "model.joblib.countylab.json": json.dumps(sidecar).encode(),
        }
    )
    dev = world.client("dev")
    resp = dev.post(
        "/api/models",
        json={
            "job_id": job,
            "file": "analyse/model.joblib",
            "name": "按村预测",
            "outputs": ["visits:number:0..30:2"],
        },
    )
    assert resp.status_code == 201, resp.text
    return {"world": world, "model": resp.json()}


def test_schema_recorded_from_catalog_not_from_rows(named: dict[str, Any]) -> None:
    card = named["model"]["card"]
    assert card["inputs"] == ["village=青禾村", "village=东岭村", "village=南湾村", "age"]
    fields = {f["name"]: f for f in card["input_schema"]["fields"]}
    assert [c["code"] for c in fields["village"]["categories"]] == VILLAGES
    assert fields["village"]["encoding"] == "onehot" and fields["village"]["source"] == "key_set:villages"
    # the range is the steward's bound (0..110), never the data's min/max (61..89)
    assert (fields["age"]["lower"], fields["age"]["upper"], fields["age"]["type"]) == (0, 110, "integer")
    assert "60" not in json.dumps(card["input_schema"]) and "89" not in json.dumps(card["input_schema"])


def test_predict_by_named_fields_through_the_sandbox(named: dict[str, Any]) -> None:
    world, mid = named["world"], named["model"]["id"]
    steward, dev = world.client("steward"), world.client("dev")
    report = steward.post(f"/api/models/{mid}/assessment")
    assert report.status_code == 200, report.text
    assert report.json()["assessment"]["verdict"] in ("pass", "warn"), report.json()
    ok = steward.post(f"/api/models/{mid}/decision", json={"approve": True, "note": "线性模型，无目标列"})
    assert ok.status_code == 200 and ok.json()["state"] == "approved", ok.text
    got = dev.post(
        f"/api/models/{mid}/predict",
        json={"rows": [{"village": "东岭村", "age": 80}, {"village": "青禾村", "age": "80"}]},
    )
    assert got.status_code == 200, got.text
    east, green = got.json()["predictions"]
    assert abs(east - 13.0) < 0.2 and abs(green - 8.0) < 0.2  # the one-hot column did its work

    def refused(record: dict[str, Any]) -> dict[str, Any]:
        r = dev.post(f"/api/models/{mid}/predict", json={"rows": [record]})
        assert r.status_code == 422, r.text
        return dict(r.json()["error"])

    err = refused({"village": "西山村", "age": 80})
    assert err["details"]["reason"] == "unknown_category" and err["details"]["column"] == "village"
    assert "东岭村" in err["message"] or "东岭村" in json.dumps(err, ensure_ascii=False)
    err = refused({"village": "东岭村", "age": 130})
    assert err["details"]["reason"] == "out_of_range" and "110" in json.dumps(err, ensure_ascii=False)
    assert refused({"village": "东岭村"})["details"]["reason"] == "missing_field"
    assert refused({"village": "东岭村", "age": 80, "income": 1})["details"]["column"] == "income"
    # an encoded model takes named fields only: a positional one-hot vector is refused
    positional = dev.post(f"/api/models/{mid}/predict", json={"rows": [[0, 1, 0, 80]]})
    assert positional.status_code == 422
    assert positional.json()["error"]["details"]["reason"] == "named_fields_required"


def test_encoding_unit() -> None:
    """Labels, codes, booleans, ordinal and scaled fields, without a lab."""
    facts = {
        "town_code": sch.ColumnFacts(
            "town_code",
            "string",
            "乡镇",
            categories=(("01", "城关镇"), ("02", "青禾镇")),
            category_source="k",
        ),
        "age": sch.ColumnFacts("age", "int64", "年龄", lower=0, upper=110),
        "lives_alone": sch.ColumnFacts("lives_alone", "flag", "独居"),
    }
    raw = sch.build(["town_code", "age", "lives_alone"], facts)
    assert raw is not None and [f.name for f in raw.fields] == ["town", "age", "lives_alone"]
    assert sch.raw_record(raw, {"town": "城关镇", "age": 82, "lives_alone": "是"}) == ["01", 82, True]
    assert sch.raw_record(raw, {"town_code": "02", "age": 82.0, "lives_alone": False}) == ["02", 82, False]
    with pytest.raises(Exception, match="城关镇"):
        sch.raw_record(raw, {"town": "东关镇", "age": 82, "lives_alone": True})
    with pytest.raises(Exception, match="whole"):
        sch.raw_record(raw, {"town": "城关镇", "age": 82.5, "lives_alone": True})
    declared = [
        {"name": "town", "column": "town_code", "encoding": "ordinal"},
        {"name": "age", "encoding": "scale"},
    ]
    enc = sch.build([], facts, declared)
    assert enc is not None and enc.columns == ["town_code", "age"]
    assert sch.expand(enc, sch.raw_record(enc, {"town": "青禾镇", "age": 55})) == [1.0, 0.5]
    with pytest.raises(Exception, match="scale|缩放"):
        sch.build([], facts, [{"name": "lives_alone", "encoding": "scale"}])
    assert sch.build(["not_a_column"], facts) is None  # positional only


def _error(html: str) -> str:
    import re

    found = re.search(r'id="predict-error">([^<]*)<', html)
    return found.group(1) if found else html[-1500:]


def test_model_page_schema_form_and_spreadsheet(named: dict[str, Any]) -> None:
    """The card shows the fields as a table; one record from the form, many from a CSV/XLSX."""
    from fastapi.testclient import TestClient
    from openpyxl import Workbook

    from countylab.web.app import create_app
    from tests.support import browser_login

    world, mid = named["world"], named["model"]["id"]
    if world.client("dev").get(f"/api/models/{mid}").json()["state"] != "approved":
        test_predict_by_named_fields_through_the_sandbox(named)
    web = TestClient(create_app(world.lab), raise_server_exceptions=False)
    csrf = browser_login(web, "dev")
    page = web.get(f"/models/{mid}")
    assert page.status_code == 200 and 'id="schema-table"' in page.text
    assert 'data-field="village"' in page.text and "独热编码" in page.text and "0 到 110" in page.text
    one = web.post(
        f"/models/{mid}/predict",
        data={"csrf_token": csrf, "mode": "fields", "f.village": "东岭村", "f.age": "80"},
    )
    assert one.status_code == 200 and 'id="predictions"' in one.text, _error(one.text)
    sheet = "village,年龄\n东岭村,80\n南湾村,70\n".replace("年龄", "age").encode("utf-8-sig")
    many = web.post(
        f"/models/{mid}/predict",
        data={"csrf_token": csrf, "mode": "file"},
        files={"file": ("名单.csv", sheet, "text/csv")},
    )
    assert many.status_code == 200 and many.text.count("<strong>") >= 2, _error(many.text)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["village", "age"])
    ws.append(["青禾村", 200])  # out of range: refused, naming the field and the range
    buf = io.BytesIO()
    wb.save(buf)
    bad = web.post(
        f"/models/{mid}/predict",
        data={"csrf_token": csrf, "mode": "file"},
        files={"file": ("名单.xlsx", buf.getvalue(), "application/octet-stream")},
    )
    assert bad.status_code == 422 and "age" in bad.text and "110" in bad.text


@pytest.mark.browser
def test_model_page_in_chromium(named: dict[str, Any], browser: Any, artifacts: Any) -> None:
    """The card's field table and the form by field, as a developer sees them."""
    from tests.browser import Session, live_server
    from tests.support import PASSWORD

    world, mid = named["world"], named["model"]["id"]
    if world.client("dev").get(f"/api/models/{mid}").json()["state"] != "approved":
        test_predict_by_named_fields_through_the_sandbox(named)
    with live_server(world.lab) as base:
        dev = Session(browser, base, artifacts)
        dev.go("/login")
        dev.page.fill("input[name=username]", "dev")
        dev.page.fill("input[name=password]", PASSWORD)
        dev.page.click("#login-form button[type=submit]")
        dev.page.wait_for_url(base + "/")
        dev.go(f"/models/{mid}")
        table = dev.page.locator("#schema-table").inner_text()
        assert "village" in table and "东岭村" in table and "独热编码" in table and "0 到 110" in table
        dev.page.select_option("#fields-form select[name='f.village']", "东岭村")
        dev.page.fill("#fields-form input[name='f.age']", "80")
        dev.page.click("#fields-form button[type=submit]")
        dev.page.wait_for_selector("#predictions")
        assert "13" in dev.page.locator("#predictions").inner_text()
        dev.shot("model-named-fields")
        dev.close()


def test_register_from_the_page_without_inputs_when_the_job_declared_fields(named: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    from countylab.web.app import create_app
    from tests.support import browser_login

    world = named["world"]
    sidecar = {"inputs": [{"name": "village", "encoding": "onehot"}, {"name": "age"}]}
    job = world.make_job(
        {"model.joblib": _onehot_model(), "model.joblib.countylab.json": json.dumps(sidecar).encode()}
    )
    web = TestClient(create_app(world.lab), raise_server_exceptions=False)
    csrf = browser_login(web, "dev")
    done = web.post(
        "/models",
        data={
            "csrf_token": csrf,
            "job_id": str(job),
            "file": "analyse/model.joblib",
            "name": "页面登记",
            "outputs": "visits:number:0..30:2",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/models/"), done.text
    listed = web.get("/models")
    assert "页面登记" in listed.text and "village, age" in listed.text
