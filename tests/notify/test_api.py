"""The API, the pages and the SDK of to-do items and notifications, against a real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from countylab_client import Client, NotFoundError
from tests.airlock_e2e.conftest import SAFE_TABLE, World, build_world, request_body
from tests.browser import live_server
from tests.support import browser_login, token_for


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("notify-api"))
    job = w.make_job({"by_village.csv": SAFE_TABLE})
    resp = w.client("dev").post("/api/airlock/requests", json=request_body(job, "by_village.csv"))
    assert resp.status_code == 201, resp.text
    w.values = {"rid": resp.json()["id"]}  # type: ignore[attr-defined]
    yield w
    w.lab.close()


def test_api_lists_todos_and_notifications_and_marks_them_read(world: World) -> None:
    rid = world.values["rid"]  # type: ignore[attr-defined]
    checker = world.client("checker")
    todos = checker.get("/api/todos").json()
    assert todos["count"] >= 1
    [item] = [t for t in todos["items"] if t["link"] == f"/airlock/requests/{rid}"]
    assert item["kind"] == "todo.review_release" and item["text"].startswith("审核出域申请「测试出域」")
    assert item["age"] and item["age_s"] >= 0
    english = checker.get("/api/todos", headers={"Accept-Language": "en"}).json()["items"]
    assert any(t["text"].startswith("Review release request “测试出域”") for t in english)

    listing = checker.get("/api/notifications").json()
    assert listing["unread"] >= 1
    [n] = [n for n in listing["items"] if n["target"] == f"release:{rid}"]
    assert n["kind"] == "release.submitted" and n["link"] == f"/airlock/requests/{rid}" and not n["read"]
    marked = checker.post(f"/api/notifications/{n['id']}/read")
    assert marked.status_code == 200 and marked.json()["unread"] == listing["unread"] - 1
    again = checker.post(f"/api/notifications/{n['id']}/read")
    assert again.status_code == 200 and again.headers["x-countylab-outcome"] == "unchanged"
    # someone else's notification is not found, and reading it changes nothing
    assert world.client("dev").post(f"/api/notifications/{n['id']}/read").status_code == 404
    assert checker.get("/api/notifications?unread=true").json()["items"] == []
    assert world.client("checker2").post("/api/notifications/read-all").json()["marked"] >= 1
    assert world.client("checker2").get("/api/notifications").json()["unread"] == 0
    bad = checker.put("/api/me/notify-contact", json={"email": "not an address"})
    assert bad.status_code == 422 and "邮箱" in bad.text
    ok = checker.put("/api/me/notify-contact", json={"email": "checker@county.gov.cn"})
    assert ok.json() == {"email": "checker@county.gov.cn", "email_enabled": True}
    assert checker.get("/api/me/notify-contact").json()["email"] == "checker@county.gov.cn"


def test_pages_show_the_badge_the_panel_and_the_list(world: World) -> None:
    rid = world.values["rid"]  # type: ignore[attr-defined]
    c = TestClient(world.client("checker3").app)
    csrf = browser_login(c, "checker3")
    home = c.get("/").text
    assert 'id="todo"' in home and f'href="/airlock/requests/{rid}"' in home and "刚刚" in home
    assert 'class="bell"' in home and 'data-unread="1"' in home and 'class="badge unread">1<' in home
    page = c.get("/notifications").text
    assert "出域申请「测试出域」待审核" in page and "北京时间" in page
    nid = int(page.split('data-id="')[1].split('"')[0])
    go = c.post(f"/notifications/{nid}/read", data={"csrf_token": csrf, "go": "1"}, follow_redirects=False)
    assert go.status_code == 303 and go.headers["location"] == f"/airlock/requests/{rid}"
    assert 'data-unread="0"' in c.get("/notifications").text
    assert c.post("/notifications/read-all", data={"csrf_token": "forged"}).status_code == 403


def test_sdk_against_a_live_server(world: World) -> None:
    with live_server(world.lab) as url, Client(url, token_for(world.lab, world.users["checker3"])) as client:
        assert any(t["kind"] == "todo.review_release" for t in client.todos())
        assert client.unread_count() == 0
        assert client.set_notification_email("c3@county.gov.cn")["email"] == "c3@county.gov.cn"
        items = client.notifications()
        assert items and all(i["read"] for i in items)
        assert client.mark_all_notifications_read() == 0
        with pytest.raises(NotFoundError):
            client.mark_notification_read(999_999)
        with pytest.raises(TypeError):
            client.mark_notification_read(True)  # type: ignore[arg-type]
