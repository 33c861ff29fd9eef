"""Search through every door: the API (``/api/datasets?q=`` and ``/api/search``), the catalog page,
the SDK, and the stewards' synonym groups (API and page: permission, audit, bad input)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import countylab_client as cl
from countylab.lab import Lab
from tests.browser import live_server
from tests.support import api_client, audit_actions, browser_login, build_lab, create_user, token_for


@pytest.fixture(scope="module")
def reader(demo_catalog: Lab) -> TestClient:
    return api_client(demo_catalog, create_user(demo_catalog, "reader", ["developer"], org="康养科技"))


def test_api_listing_is_ranked_and_search_says_why(reader: TestClient) -> None:
    listed = reader.get("/api/datasets", params={"q": "居民"}).json()["items"]
    assert listed[0]["name"] == "residents"
    found = reader.get("/api/search", params={"q": "身份证"}).json()
    top = found["items"][0]
    assert top["name"] == "residents" and top["score"] > 0
    assert top["matches"] == [
        {
            "term": "身份证",
            "word": "公民身份号码",
            "field": "column",
            "label": "公民身份号码（id_number）",
            "strength": "exact",
            "via_synonym": True,
        }
    ]
    everything = reader.get("/api/search").json()["items"]
    assert len(everything) == 9 and all(i["matches"] == [] for i in everything)
    assert reader.get("/api/search", params={"q": "低保"}).json()["items"] == []


def test_catalog_page_highlights_the_matching_column(demo_catalog: Lab) -> None:
    client = TestClient(create_app_for(demo_catalog))
    create_user(demo_catalog, "pageuser", ["developer"], org="康养科技")
    browser_login(client, "pageuser")
    html = client.get("/datasets", params={"q": "身份证"}).text
    assert html.index("常住人口信息") < html.index("search-why")
    assert "<mark>公民身份号码</mark>" in html and "“身份证”的同义词" in html
    client.cookies.set("lang", "en")
    english = client.get("/datasets", params={"q": "身份证"}).text
    assert "synonym of “身份证”" in english


def create_app_for(lab: Lab):  # noqa: ANN201 - a FastAPI app
    from countylab.web.app import create_app

    return create_app(lab)


def test_sdk_gets_ranked_results(demo_catalog: Lab) -> None:
    user = create_user(demo_catalog, "sdkuser", ["developer"], org="康养科技")
    with live_server(demo_catalog) as url, cl.Client(url, token_for(demo_catalog, user)) as client:
        assert [d.name for d in client.datasets("老人")] == ["elderly_care_records"]
        assert client.datasets("人口")[0].name == "residents"


@pytest.fixture
def small(tmp_path: Path) -> Iterator[dict[str, object]]:
    lab = build_lab(tmp_path)
    provider = create_user(lab, "provider", ["provider"], org="县民政局")
    steward = create_user(lab, "steward", ["steward"], org="县大数据中心", kind="platform")
    admin = create_user(lab, "admin", ["admin"])
    p = api_client(lab, provider)
    made = p.post(
        "/api/datasets",
        json={"name": "dibao", "title": "最低生活保障对象名册", "description": "享受最低生活保障的家庭"},
    )
    assert made.status_code == 201, made.text
    yield {"lab": lab, "provider": p, "steward": api_client(lab, steward), "admin": api_client(lab, admin)}
    lab.close()


def test_steward_groups_extend_search_and_are_audited(small: dict[str, object]) -> None:
    lab, provider, steward = small["lab"], small["provider"], small["steward"]
    assert isinstance(lab, Lab) and isinstance(provider, TestClient) and isinstance(steward, TestClient)
    assert provider.get("/api/search", params={"q": "兜底保障"}).json()["items"] == []
    made = steward.post(
        "/api/search/synonyms", json={"words": ["兜底保障，最低生活保障"], "note": "县里叫法"}
    )
    assert made.status_code == 201, made.text
    assert made.json()["words"] == ["兜底保障", "最低生活保障"]
    hits = provider.get("/api/search", params={"q": "兜底保障"}).json()["items"]
    assert [h["name"] for h in hits] == ["dibao"] and hits[0]["matches"][0]["via_synonym"]
    gid = made.json()["id"]
    assert (
        steward.put(f"/api/search/synonyms/{gid}", json={"words": ["托底", "最低生活保障"]}).status_code
        == 200
    )
    assert provider.get("/api/search", params={"q": "兜底保障"}).json()["items"] == []
    assert provider.get("/api/search", params={"q": "托底"}).json()["items"][0]["name"] == "dibao"
    listed = provider.get("/api/search/synonyms").json()
    assert [g["words"] for g in listed["items"]] == [["托底", "最低生活保障"]]
    assert listed["builtin"][2][:3] == ["身份证", "身份证号", "公民身份号码"]
    assert steward.delete(f"/api/search/synonyms/{gid}").json() == {"deleted": gid}
    actions = [a for a, _, _ in audit_actions(lab)]
    assert {"search.synonyms.create", "search.synonyms.update", "search.synonyms.delete"} <= set(actions)


def test_only_stewards_and_admins_edit_and_bad_groups_leave_no_trace(small: dict[str, object]) -> None:
    lab, provider, admin = small["lab"], small["provider"], small["admin"]
    assert isinstance(lab, Lab) and isinstance(provider, TestClient) and isinstance(admin, TestClient)
    refused = provider.post("/api/search/synonyms", json={"words": ["甲", "乙"]})
    assert refused.status_code == 403
    assert ("permission.denied", "provider", "denied") in audit_actions(lab)
    assert admin.post("/api/search/synonyms", json={"words": ["甲", "乙"]}).status_code == 201
    one = admin.post(
        "/api/search/synonyms", json={"words": ["低保", " 低保 "]}, headers={"Accept-Language": "zh-CN"}
    )
    assert one.status_code in (400, 422) and "至少要有两个不同的词" in one.text
    assert admin.put("/api/search/synonyms/999", json={"words": ["a", "b"]}).status_code == 404
    assert len(admin.get("/api/search/synonyms").json()["items"]) == 1


def test_synonyms_page_for_steward_and_reader(small: dict[str, object], tmp_path: Path) -> None:
    lab = small["lab"]
    assert isinstance(lab, Lab)
    steward = TestClient(create_app_for(lab))
    csrf = browser_login(steward, "steward")
    page = steward.get("/search/synonyms").text
    assert "系统内置词组" in page and "公民身份号码" in page and 'id="synonym-form"' in page
    done = steward.post(
        "/search/synonyms",
        data={"words": "兜底保障、最低生活保障", "note": "", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "兜底保障，最低生活保障" in steward.get("/search/synonyms").text
    bad = steward.post(
        "/search/synonyms", data={"words": "只有一个", "csrf_token": csrf}, follow_redirects=False
    )
    assert bad.headers.get("X-Countylab-Outcome") == "refused"
    reader = TestClient(create_app_for(lab))
    browser_login(reader, "provider")
    seen = reader.get("/search/synonyms").text
    assert "兜底保障" in seen and 'id="synonym-form"' not in seen
