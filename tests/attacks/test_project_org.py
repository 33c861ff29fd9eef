"""Attack: a developer files a project under a government department to make it "in-domain".

A project's organisation decides whether it counts as a department's own (in-domain) project in
the grade policy, so it is the creator's own organisation unless an admin or operator chooses
one.  Through the API and the web form; the refusal is audited and nothing is created.
"""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from countylab.lab import Lab
from countylab.storage.models import Org, Project
from countylab.web.app import create_app
from tests.support import api_client, audit_actions, browser_login, create_user


def _orgs(lab: Lab) -> dict[str, int]:
    with lab.tx() as s:
        return {o.name: o.id for o in s.query(Org).all()}


def test_developer_cannot_file_a_project_under_a_department(lab: Lab) -> None:
    dev = create_user(lab, "dev", ["developer"], org="康养科技", kind="enterprise")
    create_user(lab, "clerk", ["provider"], org="县卫健委", kind="department")
    orgs = _orgs(lab)
    c = api_client(lab, dev)
    resp = c.post("/api/projects", json={"slug": "sneaky", "title": "伪装", "org_id": orgs["县卫健委"]})
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"]["details"]["reason"] == "project_org"
    assert ("permission.denied", "dev", "denied") in audit_actions(lab)
    with lab.tx() as s:
        assert s.query(Project).filter_by(slug="sneaky").count() == 0

    # naming one's own organisation, or none, is fine: the project is the creator's org's
    own = c.post("/api/projects", json={"slug": "mine", "title": "我的", "org_id": orgs["康养科技"]})
    plain = c.post("/api/projects", json={"slug": "plain", "title": "默认"})
    assert own.status_code == plain.status_code == 201
    with lab.tx() as s:
        kinds = {p.slug: p.org.kind if p.org else None for p in s.query(Project).all()}
    assert kinds == {"mine": "enterprise", "plain": "enterprise"}


def test_developer_without_an_organisation_cannot_pick_one(lab: Lab) -> None:
    dev = create_user(lab, "loner", ["developer"])
    create_user(lab, "clerk", ["provider"], org="县民政局", kind="department")
    resp = api_client(lab, dev).post(
        "/api/projects", json={"slug": "x-1", "title": "X", "org_id": _orgs(lab)["县民政局"]}
    )
    assert resp.status_code == 403


def test_the_web_form_refuses_it_too_and_offers_no_choice(lab: Lab) -> None:
    create_user(lab, "dev", ["developer"], org="康养科技", kind="enterprise")
    create_user(lab, "clerk", ["provider"], org="县卫健委", kind="department")
    client = TestClient(create_app(lab), raise_server_exceptions=False)
    csrf = browser_login(client, "dev")
    page = client.get("/projects")
    assert 'name="org_id"' not in page.text  # no organisation picker for developers
    resp = client.post(
        "/projects",
        data={
            "slug": "form-sneaky",
            "title": "伪装",
            "org_id": str(_orgs(lab)["县卫健委"]),
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert resp.status_code in (303, 403)
    assert resp.status_code == 403 or resp.headers.get("X-Countylab-Outcome") == "refused"
    with lab.tx() as s:
        assert s.query(Project).filter_by(slug="form-sneaky").count() == 0


def test_admins_and_operators_may_choose_the_organisation(lab: Lab) -> None:
    create_user(lab, "admin", ["admin"], org="县大数据中心", kind="platform")
    operator = create_user(lab, "ops", ["operator"], org="县大数据中心", kind="platform")
    create_user(lab, "clerk", ["provider"], org="县卫健委", kind="department")
    dept = _orgs(lab)["县卫健委"]
    resp = api_client(lab, operator).post(
        "/api/projects", json={"slug": "dept-1", "title": "D", "org_id": dept}
    )
    assert resp.status_code == 201, resp.text
    client = TestClient(create_app(lab))
    csrf = browser_login(client, "admin")
    page = client.get("/projects")
    assert re.search(rf'<option value="{dept}">县卫健委</option>', page.text)
    client.post(
        "/projects",
        data={"slug": "dept-2", "title": "D2", "org_id": str(dept), "csrf_token": csrf},
        follow_redirects=False,
    )
    with lab.tx() as s:
        assert {p.slug: p.org_id for p in s.query(Project).all()} == {"dept-1": dept, "dept-2": dept}
