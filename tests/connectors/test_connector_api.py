"""The connector API and page: who may manage connectors, and the DSN never leaving the server."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from countylab.storage.models import AuditEvent
from tests.connectors.conftest import SECRET, World, app_for, with_password
from tests.support import audit_actions, browser_login, token_for

UNREACHABLE = f"postgresql://reader:{SECRET}@127.0.0.1:1/minzheng"
BODY = {
    "dsn": UNREACHABLE,
    "source_table": "public.people",
    "cursor_column": "updated_at",
    "key_columns": ["id"],
}


def client(world: World, who: str | None) -> TestClient:
    c = TestClient(app_for(world.lab), raise_server_exceptions=False)
    if who:
        c.headers["Authorization"] = f"Bearer {token_for(world.lab, world.users[who])}"
    return c


def all_audit_text(world: World) -> str:
    with world.lab.tx() as s:
        return "\n".join(
            json.dumps([e.action, e.target, e.details], ensure_ascii=False, default=str)
            for e in s.execute(select(AuditEvent)).scalars()
        )


def test_only_the_departments_providers_and_admins_manage_connectors(world):
    url = f"/api/datasets/{world.dataset_id}/connectors"
    assert client(world, None).post(url, json=BODY).status_code == 401
    for who in ("dev", "provider2"):
        before = len(audit_actions(world.lab))
        c = client(world, who)
        assert c.post(url, json=BODY).status_code == 403
        assert c.get(url).status_code == 403
        assert ("permission.denied", who, "denied") in audit_actions(world.lab)[before:]
    created = client(world, "provider").post(url, json=BODY)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    patched = client(world, "admin").patch(f"/api/connectors/{cid}", json={"interval_s": 900})
    assert patched.json()["interval_s"] == 900
    for who in ("dev", "provider2"):
        c = client(world, who)
        assert c.patch(f"/api/connectors/{cid}", json={"enabled": False}).status_code == 403
        assert c.post(f"/api/connectors/{cid}/run").status_code == 403
        assert c.get(f"/api/connectors/{cid}/runs").status_code == 403
        assert c.delete(f"/api/connectors/{cid}").status_code == 403
    actions = [a for a, _, _ in audit_actions(world.lab)]
    assert "connector.create" in actions and "connector.update" in actions
    owner = client(world, "provider")
    assert owner.delete(f"/api/connectors/{cid}").json() == {"deleted": cid}
    assert owner.get(url).json() == {"items": []}
    assert audit_actions(world.lab)[-1] == ("connector.delete", "provider", "ok")


def test_bad_settings_are_refused_with_a_reason(world):
    c = client(world, "provider")
    url = f"/api/datasets/{world.dataset_id}/connectors"
    cases = [
        ({"dsn": "host=db passfile=/etc/passwd"}, "dsn"),
        ({"source_table": "x; drop"}, "source_table"),
        ({"cursor_column": "a b"}, "cursor_column"),
        ({"interval_s": 5}, "interval_s"),
    ]
    for patch, field in cases:
        resp = c.post(url, json={**BODY, **patch})
        assert resp.status_code == 422 and resp.json()["error"]["details"]["field"] == field, resp.text
        assert SECRET not in resp.text


def test_the_dsn_never_appears_in_responses_or_audit_events(world):
    c = client(world, "provider")
    texts = []
    resp = c.post(f"/api/datasets/{world.dataset_id}/connectors", json=BODY)
    cid = resp.json()["id"]
    texts.append(resp.text)
    assert resp.json()["dsn"] == "host=127.0.0.1 port=1 dbname=minzheng user=reader password=***"
    texts.append(c.get(f"/api/datasets/{world.dataset_id}/connectors").text)
    run = c.post(f"/api/connectors/{cid}/run")
    texts.append(run.text)
    assert run.status_code == 200 and run.json()["status"] == "failed"
    assert run.json()["error"]["reason"] == "unreachable" and run.json()["error"]["zh"]
    texts.append(c.get(f"/api/connectors/{cid}/runs").text)
    new_dsn = with_password("postgresql://reader@127.0.0.1:2/x", SECRET + "-2")
    texts.append(c.patch(f"/api/connectors/{cid}", json={"dsn": new_dsn, "reset_cursor": True}).text)
    texts.append(c.delete(f"/api/connectors/{cid}").text)
    for text in [*texts, all_audit_text(world)]:
        assert SECRET not in text and "reader:" not in text
    actions = [a for a, _, _ in audit_actions(world.lab)]
    assert {"connector.create", "connector.sync", "connector.update", "connector.delete"} <= set(actions)


def test_connectors_page_lists_masks_adds_and_runs(world):
    c = TestClient(app_for(world.lab), raise_server_exceptions=False)
    csrf = browser_login(c, "provider")
    page = f"/datasets/{world.dataset_id}/connectors"
    resp = c.post(
        page,
        data={
            **{k: v for k, v in BODY.items() if k != "key_columns"},
            "key_columns": "id",
            "interval_s": "600",
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers.get("X-Countylab-Outcome") != "refused"
    html = c.get(page).text
    assert "password=***" in html and SECRET not in html and "public.people" in html
    cid = int(re.search(r'data-connector="(\d+)"', html).group(1))
    run = c.post(f"/connectors/{cid}/run", data={"csrf_token": csrf}, follow_redirects=False)
    assert run.status_code == 303 and run.headers["location"] == page
    html = c.get(page).text
    assert "run-failed" in html and SECRET not in html
    assert (
        c.post(
            f"/connectors/{cid}/toggle", data={"enabled": "0", "csrf_token": csrf}, follow_redirects=False
        ).status_code
        == 303
    )
    gone = c.post(f"/connectors/{cid}/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert gone.status_code == 303
    assert 'data-connector="' not in c.get(page).text
    assert SECRET not in all_audit_text(world)


def test_connectors_page_is_refused_to_other_departments(world):
    c = TestClient(app_for(world.lab), raise_server_exceptions=False)
    browser_login(c, "provider2")
    assert c.get(f"/datasets/{world.dataset_id}/connectors").status_code == 403


@pytest.mark.postgres
def test_run_now_through_the_api_pulls_rows(world, source, source_url):
    c = client(world, "provider")
    cid = c.post(
        f"/api/datasets/{world.dataset_id}/connectors", json={**BODY, "dsn": with_password(source_url)}
    ).json()["id"]
    run = c.post(f"/api/connectors/{cid}/run").json()
    assert (run["status"], run["rows"], run["version"], run["error"]) == ("succeeded", 3, 1, None)
    listed = c.get(f"/api/datasets/{world.dataset_id}/connectors").json()["items"][0]
    assert listed["last_run"]["rows"] == 3
    assert listed["last_cursor"].startswith("datetime:2024-03-01T08:02:00")
    assert SECRET not in json.dumps(listed)
