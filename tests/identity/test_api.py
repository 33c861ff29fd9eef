"""Identity, projects and grants through the in-process API, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update

from countylab.storage.models import ApiToken, Dataset, Org
from tests.support import api_client, audit_actions, token_for


def test_whoami_and_projects_roundtrip(any_lab, make_user):
    admin = make_user(any_lab, "admin", ["admin"], org="县大数据中心", kind="platform")
    dev = make_user(any_lab, "dev", ["developer"], org="康养科技", kind="enterprise")
    c = api_client(any_lab, dev)
    me = c.get("/api/whoami").json()
    assert me["username"] == "dev" and me["roles"] == ["developer"] and me["org"]["kind"] == "enterprise"

    created = c.post("/api/projects", json={"slug": "elderly", "title": "养老需求"})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert created.json()["members"] == [{"user_id": dev, "username": "dev", "role": "owner"}]

    other = make_user(any_lab, "other", ["developer"])
    c_other = api_client(any_lab, other)
    assert c_other.get("/api/projects").json()["items"] == []  # not a member: invisible
    assert c_other.get(f"/api/projects/{pid}").status_code == 403
    assert c.post(f"/api/projects/{pid}/members", json={"username": "other"}).status_code == 201
    assert [p["id"] for p in c_other.get("/api/projects").json()["items"]] == [pid]
    # a plain member cannot add members; the refusal is audited
    third = make_user(any_lab, "third", ["developer"])
    refused = c_other.post(f"/api/projects/{pid}/members", json={"username": "third"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert ("permission.denied", "other", "denied") in audit_actions(any_lab)
    # admins see every project (oversight)
    assert [p["id"] for p in api_client(any_lab, admin).get("/api/projects").json()["items"]] == [pid]
    del third


def test_direct_grants_by_admin_only_and_never_core(any_lab, make_user):
    steward = make_user(any_lab, "steward", ["steward"])
    admin = make_user(any_lab, "admin", ["admin"])
    dev = make_user(any_lab, "dev", ["developer"])
    with any_lab.tx() as s:
        org = Org(name="民政局", kind="department")
        s.add(org)
        s.flush()
        ds = Dataset(
            name="residents",
            title="户籍人口",
            org_id=org.id,
            grade="general_4",
            tags=[],
            description="",
            contact="",
            update_frequency="static",
            privacy_unit="person",
            grade_confirmed=True,
            grade_reason="",
        )
        core = Dataset(
            name="core",
            title="核心",
            org_id=org.id,
            grade="core",
            tags=[],
            description="",
            contact="",
            update_frequency="static",
            privacy_unit="none",
            grade_confirmed=True,
            grade_reason="",
        )
        s.add_all([ds, core])
        s.flush()
        ds_id, core_id = ds.id, core.id
    c_dev = api_client(any_lab, dev)
    pid = c_dev.post("/api/projects", json={"slug": "p1", "title": "P"}).json()["id"]
    assert c_dev.post(f"/api/projects/{pid}/grants", json={"dataset_id": ds_id}).status_code == 403
    c_st = api_client(any_lab, steward)
    # the steward no longer grants by hand: an emergency grant is an admin's, with reason and end date
    soon = (date.today() + timedelta(days=10)).isoformat()
    why = {"reason": "防汛应急需要立即核查数据", "ends_on": soon}
    assert c_st.post(f"/api/projects/{pid}/grants", json={"dataset_id": ds_id, **why}).status_code == 403
    c_admin = api_client(any_lab, admin)
    assert c_admin.post(f"/api/projects/{pid}/grants", json={"dataset_id": ds_id}).status_code == 422
    r = c_admin.post(f"/api/projects/{pid}/grants", json={"dataset_id": ds_id, **why})
    assert r.status_code == 201, r.text
    assert c_admin.post(f"/api/projects/{pid}/grants", json={"dataset_id": ds_id, **why}).status_code == 409
    assert c_admin.post(f"/api/projects/{pid}/grants", json={"dataset_id": core_id, **why}).status_code == 422
    assert c_admin.post(f"/api/projects/{pid}/grants", json={"dataset_id": 999, **why}).status_code == 404
    assert c_dev.get(f"/api/projects/{pid}").json()["datasets"] == [
        {"dataset_id": ds_id, "name": "residents"}
    ]
    assert c_st.delete(f"/api/projects/{pid}/grants/{ds_id}").status_code == 200
    assert c_dev.get(f"/api/projects/{pid}").json()["datasets"] == []


def test_tokens_expired_revoked_and_deactivated_users_are_refused(any_lab, make_user):
    uid = make_user(any_lab, "dev", ["developer"])
    any_lab.principals.ttl_s = 0.1  # the bearer-token cache's lifetime, shortened for the test
    tok = token_for(any_lab, uid)
    c = api_client(any_lab)
    ok = c.get("/api/whoami", headers={"Authorization": f"Bearer {tok}"})
    assert ok.status_code == 200
    # the token is stored only as a hash
    with any_lab.tx() as s:
        stored = s.query(ApiToken).all()
        assert all(tok not in (t.token_hash + t.prefix) for t in stored)
        s.execute(update(ApiToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    # an edit behind the server's back (as from another process) shows once the cache entry lapses
    time.sleep(0.15)
    expired = c.get("/api/whoami", headers={"Authorization": f"Bearer {tok}"})
    assert expired.status_code == 401 and "令牌" in expired.json()["error"]["message"]

    tok2 = token_for(any_lab, uid)
    mine = api_client(any_lab, uid)
    listed = mine.get("/api/tokens").json()["items"]
    tok2_id = next(t["id"] for t in listed if t["prefix"] == tok2[:10])
    assert mine.delete(f"/api/tokens/{tok2_id}").status_code == 200
    assert c.get("/api/whoami", headers={"Authorization": f"Bearer {tok2}"}).status_code == 401
    assert c.get("/api/whoami", headers={"Authorization": "Bearer clk_forged"}).status_code == 401

    admin = make_user(any_lab, "admin", ["admin"])
    tok3 = token_for(any_lab, uid)
    assert (
        api_client(any_lab, admin).put(f"/api/users/{uid}/active", json={"active": False}).status_code == 200
    )
    assert c.get("/api/whoami", headers={"Authorization": f"Bearer {tok3}"}).status_code == 401


def test_bad_input_is_a_clear_4xx_and_changes_nothing(any_lab, make_user):
    admin = make_user(any_lab, "admin", ["admin"])
    c = api_client(any_lab, admin)
    before = audit_actions(any_lab)
    bad_json = c.post("/api/orgs", content=b'{"name": ', headers={"content-type": "application/json"})
    assert bad_json.status_code == 422
    assert "JSON" in bad_json.json()["error"]["message"] and "Traceback" not in bad_json.text
    missing = c.post("/api/users", json={"username": "x"})
    assert missing.status_code == 422 and "password" in missing.json()["error"]["message"]
    bad_role = c.post("/api/users", json={"username": "bob", "password": "longenough", "roles": ["king"]})
    assert bad_role.status_code == 422 and "king" in bad_role.json()["error"]["message"]
    short_pw = c.post("/api/users", json={"username": "bob", "password": "short", "roles": []})
    assert short_pw.status_code == 422 and short_pw.json()["error"]["details"]["field"] == "password"
    assert c.get("/api/projects/4242").status_code == 404
    assert c.put("/api/users/4242/roles", json={"roles": []}).status_code == 404
    en = c.get("/api/projects/4242", headers={"Accept-Language": "en"}).json()["error"]["message"]
    assert en == "Project 4242 not found"
    assert audit_actions(any_lab) == before  # nothing written for refused bad input
    assert c.post("/api/orgs", json={"name": "县民政局", "kind": "department"}).status_code == 201
    assert c.post("/api/orgs", json={"name": "县民政局", "kind": "department"}).status_code == 409
    assert [u["username"] for u in c.get("/api/users").json()["items"]] == ["admin"]


def test_unauthenticated_and_wrong_role(any_lab, make_user):
    anon = api_client(any_lab)
    r = anon.get("/api/whoami")
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    leader = make_user(any_lab, "leader", ["leader"])
    c = api_client(any_lab, leader)
    r = c.post("/api/orgs", json={"name": "x", "kind": "department"})
    err = r.json()["error"]
    assert r.status_code == 403 and "管理机构" in err["message"]  # the permission in words
    assert err["details"]["permission"] == "org.manage"
    assert c.get("/api/audit").status_code == 403
    denied = [a for a in audit_actions(any_lab) if a[0] == "permission.denied"]
    assert denied == [("permission.denied", "leader", "denied")] * 2
