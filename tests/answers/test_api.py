"""Answers over the API: names from public key sets at no budget cost, readable headers, exports."""

from __future__ import annotations

import csv
import io

import openpyxl
from sqlalchemy import select

from countylab.catalog import service as catalog
from countylab.identity.access import SYSTEM
from countylab.storage.catalog_models import KeySet
from tests.privacy_gateway.conftest import ELDERLY_SQL, ask, client_for, project_id

TOWNS_SQL = "SELECT town_code, COUNT(*) FROM residents GROUP BY town_code"


def _spent(client, project: int) -> dict[tuple[str, str, int], tuple[float, float]]:
    """(dataset, scope, analyst) → (ε spent, δ spent) of every ledger of the project."""
    view = client.get(f"/api/projects/{project}/budget").json()
    return {
        (b["dataset"], b["scope"], b.get("user_id") or 0): (b["epsilon_spent"], b["delta_spent"])
        for b in view["budgets"]
    }


def test_town_names_appear_next_to_codes_and_the_raw_answer_is_unrounded(demo_lab):
    dev, project = client_for(demo_lab, "developer"), project_id(demo_lab)
    r = ask(dev, ELDERLY_SQL, project, epsilon=0.5)
    assert r.status_code == 200, r.text
    data = r.json()
    shown = data["display"]
    assert shown["headers"] == ["乡镇", "人数"]
    assert len(shown["cells"]) == 12  # the public key set: every town
    first = shown["cells"][0][0]
    assert first.endswith(f"({data['rows'][0][0]})") and first.split(" (")[0] == shown["names"][0][0]
    assert shown["names"][0][0] and not shown["names"][0][0].isdigit()
    # the raw values stay in rows/intervals; the shown value is rounded inside its interval
    for row, cells, lows in zip(data["rows"], shown["values"], shown["low"], strict=True):
        iv = data["intervals"]["count(*)"][data["rows"].index(row)]
        assert iv[0] <= cells[1] <= iv[1]
        assert lows[1] is not None
    en = client_for(demo_lab, "developer")
    en.headers["Accept-Language"] = "en"
    again = ask(en, ELDERLY_SQL, project, epsilon=0.5).json()
    assert again["cached"] and again["display"]["headers"] == ["town", "People"]
    # the notes: English in the API's notes and the English display, Chinese in the Chinese display
    assert data["notes"] == again["notes"] == again["display"]["notes"] and "ε-DP" in data["notes"][0]
    assert shown["notes"][0].startswith("纯 ε-差分隐私") and len(shown["notes"]) == len(data["notes"])


def test_names_cost_nothing_the_budget_spent_is_identical_with_and_without_labels(demo_lab):
    """Labels are public metadata applied after the release: the ledgers cannot tell them apart."""
    dev, project = client_for(demo_lab, "developer"), project_id(demo_lab)
    start = _spent(dev, project)
    with_names = ask(dev, TOWNS_SQL, project, epsilon=0.5).json()
    after_first = _spent(dev, project)
    with demo_lab.tx() as s:
        ks = s.execute(select(KeySet).where(KeySet.name == "towns.town_code")).scalar_one()
        catalog.upsert_key_set(
            s, SYSTEM, name=ks.name, title=ks.title, values=list(ks.values), source=ks.source
        )
    # the same question without labels is the same query: its stored answer, nothing charged
    same = ask(dev, TOWNS_SQL, project, epsilon=0.5).json()
    assert same["cached"] and same["rows"] == with_names["rows"] and _spent(dev, project) == after_first
    assert same["display"]["names"][0][0] is None and same["display"]["headers"][0] == "乡镇代码"
    assert with_names["display"]["names"][0][0] is not None
    # a new question without labels is charged exactly what the first one was with them
    other = "SELECT town_code, COUNT(*) FROM residents WHERE age >= 0 GROUP BY town_code"
    without = ask(dev, other, project, epsilon=0.5).json()
    after_second = _spent(dev, project)
    assert with_names["epsilon_spent"] == without["epsilon_spent"] == 0.5
    assert with_names["delta_spent"] == without["delta_spent"]

    def step(a, b):
        return {
            k: (round(v[0] - a.get(k, (0, 0))[0], 12), round(v[1] - a.get(k, (0, 0))[1], 15))
            for k, v in b.items()
        }

    assert step(start, after_first) == step(after_first, after_second)
    assert (0.5, 0.0) in step(start, after_first).values()


def test_group_by_village_codes_of_another_table_gets_village_names(demo_lab):
    researcher = client_for(demo_lab, "researcher")  # the crop-yield project's owner
    sql = "SELECT village_code, SUM(area_mu) FROM farmland_plots GROUP BY village_code"
    r = ask(researcher, sql, project_id(demo_lab, "crop-yield"), 1.0)
    assert r.status_code == 200, r.text
    shown = r.json()["display"]
    assert shown["headers"][1].endswith("合计")
    assert all(n for n in (row[0] for row in shown["names"]))


def test_csv_and_xlsx_exports_open_in_excel_with_the_dp_note(demo_lab):
    dev, project = client_for(demo_lab, "developer"), project_id(demo_lab)
    data = ask(dev, ELDERLY_SQL, project, epsilon=0.5).json()
    before = _spent(dev, project)
    qid = data["query_id"]
    r = dev.get(f"/api/queries/{qid}/answer.csv")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    assert "filename*=UTF-8''" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["乡镇", "乡镇代码", "人数", "人数 95%区间下限", "人数 95%区间上限"]
    assert (
        len(rows) == 13 and rows[1][1] == data["rows"][0][0] and rows[1][0] == data["display"]["names"][0][0]
    )
    x = dev.get(f"/api/queries/{qid}/answer.xlsx")
    assert x.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(x.content))
    text = "\n".join(str(c.value) for row in wb.active.iter_rows() for c in row if c.value is not None)
    assert "ε = 0.5" in text and "95%" in text and "取整" in text and ELDERLY_SQL in text
    assert _spent(dev, project) == before  # downloads read the stored answer: free
    # not a member of the project: refused; unknown query: 404; other formats: 422
    assert client_for(demo_lab, "checker").get(f"/api/queries/{qid}/answer.csv").status_code == 403
    assert dev.get("/api/queries/999999/answer.csv").status_code == 404
    assert dev.get(f"/api/queries/{qid}/answer.pdf").status_code == 422


def test_a_refused_query_has_nothing_to_export(demo_lab):
    dev, project = client_for(demo_lab, "developer"), project_id(demo_lab)
    assert ask(dev, "SELECT * FROM residents", project).status_code == 422
    runs = dev.get(f"/api/projects/{project}/queries").json()["items"]
    assert dev.get(f"/api/queries/{runs[0]['id']}/answer.csv").status_code == 404
