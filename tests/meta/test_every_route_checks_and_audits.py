"""Meta-test: every state-changing route checks a permission and writes an audit event.

It walks the app's routes; a new POST/PUT/PATCH/DELETE route without an entry in EXAMPLES
fails the suite.  For each route, in a fresh lab (the World is built once; each test opens a new
Lab over a fresh copy of its data folder, restored at the same path so stored paths stay valid):
  1. anonymous → refused (401 / login redirect), nothing written;
  2. a user with no roles and no memberships → refused, and a ``permission.denied`` event;
  3. the right user with a valid example → succeeds and writes a non-denial audit event.
"""

from __future__ import annotations

import importlib
import io
import re
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from countylab.identity import projects as prj
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.storage.catalog_models import Connector
from countylab.storage.models import Dataset, Org
from countylab.web.app import create_app, iter_api_routes
from tests.meta.example import Example
from tests.support import PASSWORD, audit_actions, browser_login, build_lab, token_for

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_SOON = (date.today() + timedelta(days=10)).isoformat()  # an emergency grant's end date


EXAMPLES: dict[tuple[str, str], Example] = {
    # API
    ("POST", "/api/orgs"): Example("admin", {"name": "县卫健委", "kind": "department"}),
    ("POST", "/api/users"): Example(
        "admin", {"username": "newbie", "password": "long-enough", "roles": ["leader"]}
    ),
    ("PUT", "/api/users/{user_id}/roles"): Example("admin", {"roles": ["developer", "leader"]}),
    ("PUT", "/api/users/{user_id}/active"): Example("admin", {"active": False}),
    ("POST", "/api/tokens"): Example("dev", {"name": "ci"}, open_to_all=True),
    ("POST", "/api/login"): Example("dev", anonymous=True),
    ("POST", "/api/me/password"): Example(
        "dev", {"old": PASSWORD, "new": "another-password"}, open_to_all=True
    ),
    ("DELETE", "/api/tokens/{token_id}"): Example("dev", open_to_all=False),
    ("POST", "/api/projects"): Example("dev", {"slug": "new-project", "title": "新项目"}),
    ("POST", "/api/projects/{project_id}/members"): Example("dev", {"username": "other"}),
    ("DELETE", "/api/projects/{project_id}/members/{user_id}"): Example("dev", params={"user_id": "member"}),
    ("POST", "/api/projects/{project_id}/grants"): Example(  # the emergency grant: admins, reason, end date
        "admin", {"dataset_id": "{dataset2_id}", "reason": "防汛应急需要立即核查数据", "ends_on": _SOON}
    ),
    ("DELETE", "/api/projects/{project_id}/grants/{dataset_id}"): Example("steward"),
    # pages
    ("POST", "/login"): Example("dev", anonymous=True),
    ("POST", "/logout"): Example("dev", open_to_all=True),
    ("POST", "/orgs"): Example("admin", {"name": "县交通运输局", "kind": "department"}),
    ("POST", "/users"): Example(
        "admin", {"username": "formuser", "password": "long-enough", "roles": "leader"}
    ),
    ("POST", "/users/{user_id}/roles"): Example("admin", {"roles": "checker"}),
    ("POST", "/users/{user_id}/active"): Example("admin", {"active": "0"}),
    ("POST", "/me/tokens"): Example("dev", {"name": "web", "days": "30"}, open_to_all=True),
    ("POST", "/me/tokens/{token_id}/revoke"): Example("dev"),
    ("POST", "/me/password"): Example("dev", {"old": PASSWORD, "new": "another-password"}, open_to_all=True),
    ("POST", "/projects"): Example("dev", {"slug": "form-project", "title": "表单项目"}),
    ("POST", "/projects/{project_id}/members"): Example("dev", {"username": "other", "role": "member"}),
    ("POST", "/projects/{project_id}/members/{user_id}/remove"): Example("dev", params={"user_id": "member"}),
    ("POST", "/projects/{project_id}/grants"): Example(
        "admin", {"dataset_id": "{dataset2_id}", "reason": "防汛应急需要立即核查数据", "ends_on": _SOON}
    ),
    ("POST", "/projects/{project_id}/grants/{dataset_id}/revoke"): Example("steward"),
    # catalog API
    ("POST", "/api/datasets"): Example("provider", {"name": "new_ds", "title": "新数据集"}),
    ("PATCH", "/api/datasets/{dataset_id}"): Example("provider", {"title": "改名"}),
    ("POST", "/api/datasets/{dataset_id}/uploads"): Example("provider", files=True),
    ("POST", "/api/datasets/{dataset_id}/uploads/{upload_id}/commit"): Example(
        "provider", {"mode": "append"}
    ),
    ("POST", "/api/datasets/{dataset_id}/versions"): Example("provider", {"mode": "append"}, files=True),
    ("POST", "/api/datasets/{dataset_id}/rows"): Example(
        "provider", {"rows": [{"resident_id": "R9", "age": 50}], "idempotency_key": "meta-1"}
    ),
    ("POST", "/api/datasets/{dataset_id}/compact"): Example("provider"),
    ("PUT", "/api/datasets/{dataset_id}/grade"): Example("steward", {"grade": "general_4"}),
    ("PUT", "/api/datasets/{dataset_id}/columns/{name}"): Example("steward", {"lower": 0, "upper": 110}),
    ("PUT", "/api/key-sets/{name}"): Example("steward", {"title": "乡镇", "values": ["青禾镇", "城关街道"]}),
    # catalog pages
    ("POST", "/datasets"): Example("provider", {"name": "form_ds", "title": "表单数据集"}),
    ("POST", "/datasets/{dataset_id}/edit"): Example("provider", {"title": "表单改名"}),
    ("POST", "/datasets/{dataset_id}/upload"): Example("provider", files=True),
    ("POST", "/datasets/{dataset_id}/upload/{upload_id}/commit"): Example("provider", {"mode": "append"}),
    ("POST", "/datasets/{dataset_id}/grade"): Example("steward", {"grade": "general_4"}),
    ("POST", "/datasets/{dataset_id}/columns/{name}"): Example("steward", {"lower": "0", "upper": "110"}),
    # pull connectors (the World's connector points at a closed port: a run records a failed sync)
    ("POST", "/api/datasets/{dataset_id}/connectors"): Example(
        "provider",
        {"dsn": "postgresql://reader:pw@127.0.0.1:1/x", "source_table": "people", "cursor_column": "id"},
    ),
    ("PATCH", "/api/connectors/{connector_id}"): Example("provider", {"interval_s": 900}),
    ("DELETE", "/api/connectors/{connector_id}"): Example("provider"),
    ("POST", "/api/connectors/{connector_id}/run"): Example("provider"),
    ("POST", "/datasets/{dataset_id}/connectors"): Example(
        "provider",
        {"dsn": "host=127.0.0.1 port=1 user=r password=pw", "source_table": "people", "cursor_column": "id"},
    ),
    ("POST", "/connectors/{connector_id}/run"): Example("provider"),
    ("POST", "/connectors/{connector_id}/toggle"): Example("provider", {"enabled": "0"}),
    ("POST", "/connectors/{connector_id}/delete"): Example("admin"),
}

WORLD_CSV = "resident_id,age\nR1,30\nR2,41\n"

# Each capability keeps its own examples in tests/meta/examples_<area>.py, exporting EXAMPLES
# (same shape as above) and optionally setup(world) to add what its routes need to the World.
AREA_MODULES = [
    importlib.import_module(f"tests.meta.{p.stem}")
    for p in sorted(Path(__file__).parent.glob("examples_*.py"))
]
for _module in AREA_MODULES:
    EXAMPLES.update(_module.EXAMPLES)


def unsafe_routes() -> list[tuple[str, str]]:
    from countylab.config import Settings
    from countylab.lab import Lab

    lab = Lab(Settings(database_url="sqlite://"))
    routes = []
    for route in iter_api_routes(create_app(lab)):
        for method in route.methods & UNSAFE:
            routes.append((method, route.path))
    lab.close()
    return sorted(routes)


ROUTES = unsafe_routes()


def test_every_state_changing_route_has_an_example():
    missing = [r for r in ROUTES if r not in EXAMPLES]
    assert not missing, f"add these routes to EXAMPLES in {Path(__file__).name}: {missing}"
    assert len(ROUTES) >= 20


class World:
    """A small lab: admin, steward, developer owning a project, a member, a user with no roles."""

    def __init__(self, tmp_path: Path) -> None:
        self.lab = build_lab(tmp_path)
        with self.lab.tx() as s:
            org = ids.create_org(s, SYSTEM, name="县民政局", kind="department")
            self.users = {}
            for name, roles in [
                ("admin", ["admin"]),
                ("steward", ["steward"]),
                ("dev", ["developer"]),
                ("provider", ["provider"]),
                ("member", ["developer"]),
                ("other", ["developer"]),
                ("nobody", []),
            ]:
                self.users[name] = ids.create_user(
                    s, SYSTEM, username=name, password=PASSWORD, display_name=name, roles=roles, org_id=org.id
                ).id
            dev = ids.principal_for(s, ids.get_user(s, self.users["dev"]), "system")
            project = prj.create_project(s, dev, slug="proj", title="项目")
            self.project_id = project.id
            dev = ids.principal_for(s, ids.get_user(s, self.users["dev"]), "system")
            prj.add_member(s, dev, project.id, username="member")
            datasets = []
            for name in ("d1", "d2"):
                d = Dataset(
                    name=name,
                    title=name,
                    org_id=org.id,
                    grade="general_2",
                    tags=[],
                    description="",
                    contact="",
                    update_frequency="static",
                    privacy_unit="none",
                    grade_confirmed=True,
                    grade_reason="",
                )
                s.add(d)
                s.flush()
                datasets.append(d.id)
            self.dataset_id, self.dataset2_id = datasets
            prj.grant_dataset(s, SYSTEM, project.id, self.dataset_id)
            connector = Connector(
                dataset_id=self.dataset_id,
                kind="postgresql",
                source_table="public.people",
                dsn="postgresql://reader:pw@127.0.0.1:1/x",
                cursor_column="id",
                key_columns=[],
                interval_s=300,
                enabled=True,
            )
            s.add(connector)
            s.flush()
            self.connector_id = connector.id
        csv = tmp_path / "d1.csv"
        csv.write_text(WORLD_CSV)
        self.lab.ingestion.ingest_file(SYSTEM, self.dataset_id, csv)
        self.token_id = None
        self.values: dict[str, str] = {}  # extra path values areas add in setup()
        for module in AREA_MODULES:
            if hasattr(module, "setup"):
                module.setup(self)

    def staged_for(self, actor: str) -> str:
        """A staged upload of ``actor`` (the upload pages need one of the user's own)."""
        with self.lab.tx() as s:
            principal = ids.principal_for(s, ids.get_user(s, self.users[actor]), "session")
        return self.lab.ingestion.stage_upload(
            principal, self.dataset_id, "more.csv", io.BytesIO(WORLD_CSV.encode())
        ).id

    def fill(self, path: str, ex: Example, actor: str) -> str:
        values = {
            "project_id": str(self.project_id),
            "dataset_id": str(self.dataset_id),
            "user_id": str(self.users[ex.params.get("user_id", "other")]),
            "connector_id": str(self.connector_id),
        }
        if "{upload_id}" in path:
            values["upload_id"] = "0" * 32
            if actor != "nobody":
                with self.lab.tx() as s:
                    principal = ids.principal_for(s, ids.get_user(s, self.users[actor]), "session")
                staged = self.lab.ingestion.stage_upload(
                    principal, self.dataset_id, "more.csv", io.BytesIO(WORLD_CSV.encode())
                )
                values["upload_id"] = staged.id
        if path.endswith("/compact"):  # something to compact
            self.lab.ingestion.push(SYSTEM, self.dataset_id, [{"resident_id": "R7", "age": 7}], None)
        values["name"] = "towns" if "key-sets" in path else "age"
        values.update(self.values)
        for module in AREA_MODULES:  # per-call values (e.g. a fresh object for each actor)
            if hasattr(module, "fill"):
                values.update(module.fill(self, path, actor))
        if "{token_id}" in path:
            with self.lab.tx() as s:
                values["token_id"] = str(
                    ids.create_token(s, SYSTEM, user_id=self.users[actor], name="t", days=5).id
                )
        return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)

    def body(self, ex: Example) -> dict[str, Any] | None:
        if ex.body is None:
            return None
        return {k: (str(self.dataset2_id) if v == "{dataset2_id}" else v) for k, v in ex.body.items()}


def _call(
    client: TestClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    csrf: str | None,
    files: bool = False,
):
    if files:
        data = dict(body or {})
        if csrf:
            data["csrf_token"] = csrf
        return client.request(
            method,
            path,
            data=data,
            files={"file": files if isinstance(files, tuple) else ("more.csv", WORLD_CSV.encode())},
            headers={"X-CSRF-Token": csrf} if csrf else {},
            follow_redirects=False,
        )
    if path.startswith("/api/"):
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        if csrf:
            kwargs["headers"] = {"X-CSRF-Token": csrf}
        return client.request(method, path, **kwargs)
    data = dict(body or {})
    if csrf:
        data["csrf_token"] = csrf
    return client.request(method, path, data=data, follow_redirects=False)


def _refused(resp) -> bool:
    return resp.status_code in (401, 403) or (
        resp.status_code == 303 and resp.headers.get("X-Countylab-Outcome") == "refused"
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Path, Path]]:
    """The World built once (users, Argon2 hashes, migrations, areas' setup), and a copy of its
    data folder as it stood then."""
    home = tmp_path_factory.mktemp("meta-world")
    world = World(home)
    world.lab.close()
    snapshot = tmp_path_factory.mktemp("meta-snapshot") / "lab-data"
    shutil.copytree(home / "lab-data", snapshot, symlinks=True)
    yield world, home, snapshot


@pytest.fixture
def world(pristine: tuple[World, Path, Path]) -> Iterator[World]:
    """The pristine World for one test: its data folder restored from the snapshot at the same path
    (rows hold absolute paths, e.g. outboxes) and a new Lab over it (no in-memory state carried)."""
    built, home, snapshot = pristine
    shutil.rmtree(home / "lab-data")
    shutil.copytree(snapshot, home / "lab-data", symlinks=True)
    built.lab = build_lab(home, migrate=False)
    try:
        yield built
    finally:
        built.lab.close()


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_route_checks_permission_and_audits(world, method, path):
    ex = EXAMPLES[(method, path)]
    app = create_app(world.lab)
    url = world.fill(path, ex, ex.who)

    if ex.anonymous:  # the login form and the API login: failure and success are both audited
        client = TestClient(app, raise_server_exceptions=False)
        before = len(audit_actions(world.lab))
        if path.startswith("/api/"):
            resp = client.post(path, json={"username": ex.who, "password": "wrong-password"})
            assert resp.status_code == 401, resp.text
        else:
            page = client.get("/login")
            pre = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert pre
            resp = client.post(
                path,
                data={"username": ex.who, "password": "wrong-password", "csrf_token": pre.group(1)},
                follow_redirects=False,
            )
            assert resp.status_code == 303 and resp.headers["location"].startswith("/login"), resp.text
        # the failed request rolled back, but its event was written in a transaction of its own
        assert audit_actions(world.lab)[before:] == [("login.failed", ex.who, "denied")]
        before = len(audit_actions(world.lab))
        if path.startswith("/api/"):
            resp = client.post(path, json={"username": ex.who, "password": PASSWORD})
            assert resp.status_code == 200 and resp.json()["csrf_token"], resp.text
        else:
            browser_login(client, ex.who)
        assert audit_actions(world.lab)[before:][:1] == [("login", ex.who, "ok")]
        return

    # 1. anonymous: refused, nothing written
    before = audit_actions(world.lab)
    anon = TestClient(app, raise_server_exceptions=False)
    resp = _call(anon, method, url, world.body(ex), None, ex.files)
    assert resp.status_code == 401 or (resp.status_code == 303 and "/login" in resp.headers["location"]), (
        resp.text
    )
    assert audit_actions(world.lab) == before

    # 2. a user with no roles: refused and audited as denied
    if not ex.open_to_all:
        nobody = TestClient(app, raise_server_exceptions=False)
        csrf = browser_login(nobody, "nobody")
        before = len(audit_actions(world.lab))
        resp = _call(nobody, method, world.fill(path, ex, "nobody"), world.body(ex), csrf, ex.files)
        assert _refused(resp), f"{method} {path} let a user without roles through: {resp.status_code}"
        new = audit_actions(world.lab)[before:]
        assert ("permission.denied", "nobody", "denied") in new, new

    # 3. the right user: succeeds and writes an audit event (also via token for the API)
    client = TestClient(app, raise_server_exceptions=False)
    if path.startswith("/api/"):
        client.headers["Authorization"] = f"Bearer {token_for(world.lab, world.users[ex.who])}"
        csrf = None
    else:
        csrf = browser_login(client, ex.who)
    url = world.fill(path, ex, ex.who)  # fresh ids (e.g. an upload staged for this user)
    before = len(audit_actions(world.lab))
    resp = _call(client, method, url, world.body(ex), csrf, ex.files)
    assert resp.status_code < 400 and not _refused(resp), (
        resp.status_code,
        resp.text[:300],
        resp.cookies.get("flash"),
    )
    new = [a for a in audit_actions(world.lab)[before:] if a[0] != "permission.denied"]
    assert new, f"{method} {path} succeeded without an audit event"


def test_cookie_requests_without_csrf_are_refused_and_audited(world):
    client = TestClient(create_app(world.lab), raise_server_exceptions=False)
    browser_login(client, "admin")
    before = len(audit_actions(world.lab))
    resp = client.post("/api/orgs", json={"name": "无令牌", "kind": "department"})
    assert resp.status_code == 403 and "CSRF" in resp.json()["error"]["message"]
    resp = client.post(
        "/orgs", data={"name": "无令牌", "kind": "department", "csrf_token": "forged"}, follow_redirects=False
    )
    assert resp.status_code == 403
    new = audit_actions(world.lab)[before:]
    assert new == [("permission.denied", "admin", "denied")] * 2
    with world.lab.tx() as s:
        assert s.query(Org).filter_by(name="无令牌").count() == 0
