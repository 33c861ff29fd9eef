"""authorize(): a project scope admits members only, unless the caller asks for oversight."""

from __future__ import annotations

import pytest

from countylab.errors import PermissionDenied
from countylab.identity.access import SYSTEM, Principal, authorize
from countylab.identity.roles import OVERSIGHT_ROLES, Permission, Role
from countylab.identity.service import principal_for
from countylab.storage.models import User
from tests.support import api_client


def _who(*roles: Role, member_of: frozenset[int] = frozenset()) -> Principal:
    return Principal(user_id=7, username="x", roles=frozenset(roles), project_ids=member_of)


@pytest.mark.parametrize("role", sorted(OVERSIGHT_ROLES))
def test_oversight_roles_are_not_members_by_default(role: Role) -> None:
    watcher = _who(role, Role.developer)
    with pytest.raises(PermissionDenied) as refused:
        authorize(watcher, Permission.project_read, project_id=1)
    assert refused.value.details["reason"] == "project_member"
    authorize(watcher, Permission.project_read, project_id=1, oversight=True)  # reading: let in
    for acting in (Permission.job_submit, Permission.query_run, Permission.release_create):
        with pytest.raises(PermissionDenied):
            authorize(watcher, acting, project_id=1)


def test_members_pass_and_oversight_never_admits_other_roles() -> None:
    authorize(_who(Role.developer, member_of=frozenset({1})), Permission.query_run, project_id=1)
    with pytest.raises(PermissionDenied):
        authorize(_who(Role.developer), Permission.project_read, project_id=1, oversight=True)
    with pytest.raises(PermissionDenied):  # the role table still comes first
        authorize(_who(Role.checker, member_of=frozenset({1})), Permission.query_run, project_id=1)
    authorize(SYSTEM, Permission.query_run, project_id=1)


def test_non_member_oversight_roles_are_refused_where_members_act(lab, make_user):
    """An admin who is also a developer, and a steward, outside the project: they may read it
    (oversight) but not submit jobs, query it or ask for a top-up."""
    owner = make_user(lab, "owner", ["developer"])
    boss = make_user(lab, "boss", ["admin", "developer"])
    officer = make_user(lab, "officer", ["steward"])
    pid = api_client(lab, owner).post("/api/projects", json={"slug": "p1", "title": "P"}).json()["id"]
    for uid in (boss, officer):
        c = api_client(lab, uid)
        assert c.get(f"/api/projects/{pid}").status_code == 200  # oversight reads
        assert c.get(f"/api/projects/{pid}/jobs").status_code == 200
    boss_api = api_client(lab, boss)
    q = boss_api.post("/api/query", json={"project_id": pid, "sql": "SELECT COUNT(*) FROM t", "epsilon": 0.5})
    assert q.status_code == 403 and q.json()["error"]["details"]["reason"] == "project_member", q.text
    top = boss_api.post(
        f"/api/projects/{pid}/budget-topups", json={"dataset_id": 1, "epsilon": 1.0, "reason": "more"}
    )
    assert top.status_code == 403 and top.json()["error"]["details"]["reason"] == "project_member", top.text
    spec = "version: 1\nactions:\n  a:\n    run: python main.py\n"
    job = boss_api.post(f"/api/projects/{pid}/jobs", json={"files": {"countylab.yaml": spec, "main.py": "1"}})
    assert job.status_code == 403 and job.json()["error"]["details"]["reason"] == "project_member", job.text
    with lab.tx() as s:
        p = principal_for(s, s.get(User, boss), "token")
    with pytest.raises(PermissionDenied):
        authorize(p, Permission.release_create, project_id=pid)
