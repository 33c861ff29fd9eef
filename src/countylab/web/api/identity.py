"""API: login, who am I, organisations, users, tokens, projects, members, grants, audit."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from countylab import audit
from countylab.identity import projects as prj
from countylab.identity import service as ids
from countylab.identity.access import authorize
from countylab.identity.roles import Permission
from countylab.web.api import serialize as out
from countylab.web.deps import SESSION_COOKIE, Actor, LabDep, login_with_password, set_session_cookie
from countylab.web.params import BodyId, EventId, Id, Limit

router = APIRouter(prefix="/api", tags=["identity"])


class LoginIn(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1000)


@router.post("/login")
def login(body: LoginIn, request: Request, response: Response, lab: LabDep) -> dict[str, Any]:
    """Password login: a session cookie and its CSRF token; throttled (429 with Retry-After).

    For browser-side clients; send the token as X-CSRF-Token on unsafe requests.  Scripts use API
    tokens instead.  Wrong credentials are 401; too many failures lock the account or the
    address for login_lockout_s (429 with Retry-After), whatever the password."""
    done = login_with_password(lab, request, body.username, body.password)
    set_session_cookie(response, lab, done.session.session_id)
    return {
        "user_id": done.user_id,
        "username": done.username,
        "csrf_token": done.session.csrf_token,
        "expires_at": done.session.expires_at.isoformat(),
    }


class PasswordIn(BaseModel):
    old: str = Field(max_length=1000)
    new: str = Field(max_length=1000)
    revoke_tokens: bool = False


@router.post("/me/password")
def change_password(body: PasswordIn, request: Request, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Change one's own password; other web sessions end, revoke_tokens revokes API tokens.

    The calling session stays; ``revoke_tokens`` revokes every API token of the user (also the
    one making this call, if it is a token)."""
    keep = request.cookies.get(SESSION_COOKIE) if actor.via == "session" else None
    with lab.tx() as s:
        return ids.change_password(
            s, actor, old=body.old, new=body.new, current_sid=keep, revoke_tokens=body.revoke_tokens
        )


@router.get("/whoami")
def whoami(actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        return out.user(ids.get_user(s, actor.user_id)) if actor.user_id else {"username": actor.username}


class OrgIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: str


@router.get("/orgs")
def list_orgs(actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        return {"items": [out.org(o) for o in ids.list_orgs(s)]}


@router.post("/orgs", status_code=201)
def create_org(body: OrgIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        return out.org(ids.create_org(s, actor, name=body.name, kind=body.kind)) or {}


class UserIn(BaseModel):
    username: str
    password: str
    display_name: str = ""
    roles: list[str] = Field(default_factory=list)
    org_id: BodyId | None = None
    lang: str = "zh-CN"


@router.get("/users")
def list_users(actor: Actor, lab: LabDep) -> dict[str, Any]:
    authorize(actor, Permission.user_read, target="users")
    with lab.read() as s:
        return {"items": [out.user(u) for u in ids.list_users(s)]}


@router.post("/users", status_code=201)
def create_user(body: UserIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        return out.user(ids.create_user(s, actor, **body.model_dump()))


class RolesIn(BaseModel):
    roles: list[str]


@router.put("/users/{user_id}/roles")
def set_roles(user_id: Id, body: RolesIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        return out.user(ids.set_roles(s, actor, user_id, body.roles))


class ActiveIn(BaseModel):
    active: bool
    revoke_tokens: bool = True  # on deactivation; sessions always end


@router.put("/users/{user_id}/active")
def set_active(user_id: Id, body: ActiveIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        return out.user(ids.set_active(s, actor, user_id, body.active, revoke_tokens=body.revoke_tokens))


class TokenIn(BaseModel):
    name: str = "api"
    days: int | None = Field(default=None, ge=1, le=3650)
    user_id: BodyId | None = None


@router.get("/tokens")
def list_tokens(actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        return {"items": [out.token(t) for t in ids.list_tokens(s, actor.user_id or -1)]}


@router.post("/tokens", status_code=201)
def create_token(body: TokenIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        issued = ids.create_token(
            s,
            actor,
            user_id=body.user_id or actor.user_id or -1,
            name=body.name,
            days=body.days or lab.settings.token_days,
        )
    return {
        "id": issued.id,
        "token": issued.token,
        "expires_at": issued.expires_at.isoformat() if issued.expires_at else None,
    }


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        ids.revoke_token(s, actor, token_id)
    return {"revoked": token_id}


class ProjectIn(BaseModel):
    slug: str
    title: str
    description: str = ""
    org_id: BodyId | None = None


@router.get("/projects")
def list_projects(actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        return {
            "items": [out.project(p, prj.project_grants(s, p.id)) for p in prj.visible_projects(s, actor)]
        }


@router.post("/projects", status_code=201)
def create_project(body: ProjectIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        return out.project(prj.create_project(s, actor, **body.model_dump()))


@router.get("/projects/{project_id}")
def get_project(project_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        p = prj.get_project(s, actor, project_id)
        return out.project(p, prj.project_grants(s, p.id))


class MemberIn(BaseModel):
    username: str
    role: str = "member"


@router.post("/projects/{project_id}/members", status_code=201)
def add_member(project_id: Id, body: MemberIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        m = prj.add_member(s, actor, project_id, username=body.username, role=body.role)
        return {"project_id": m.project_id, "user_id": m.user_id, "role": m.role}


@router.delete("/projects/{project_id}/members/{user_id}")
def remove_member(project_id: Id, user_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        prj.remove_member(s, actor, project_id, user_id)
    return {"removed": user_id}


class GrantIn(BaseModel):
    """An emergency grant (紧急授权): admins only, with a written reason and an end date."""

    dataset_id: BodyId
    reason: str = Field(default="", max_length=2000)
    ends_on: date | None = None
    note: str = Field(default="", max_length=2000)  # older clients: read as the reason


@router.post("/projects/{project_id}/grants", status_code=201)
def grant(project_id: Id, body: GrantIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Emergency grant of a dataset without an application (admin, reason, end date; disclosed)."""
    from countylab.operations import emergency

    with lab.tx() as s:
        g = emergency.grant(
            s,
            actor,
            project_id,
            body.dataset_id,
            reason=body.reason or body.note,
            ends_on=body.ends_on,
            now=lab.clock(),
        )
        return {"id": g.id, "project_id": g.project_id, "dataset_id": g.dataset_id, "ends_on": body.ends_on}


@router.delete("/projects/{project_id}/grants/{dataset_id}")
def revoke_grant(project_id: Id, dataset_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        prj.revoke_grant(s, actor, project_id, dataset_id)
    return {"revoked": dataset_id}


@router.get("/audit")
def audit_events(
    actor: Actor,
    lab: LabDep,
    limit: Limit = 100,
    before_id: EventId = None,
    action: str | None = None,
    user: str | None = None,
    target: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """Events newest first; ``action`` is exact or ``group:<family>``, ``since``/``until`` Beijing dates."""
    from countylab.audit import search

    authorize(actor, Permission.audit_read, target="audit")
    f = search.AuditFilter.parse(
        actor=user, action=action, target=target, outcome=outcome, since=since, until=until
    )
    with lab.read() as s:
        events = search.find(s, f, limit=limit, before_id=before_id)
    return {"items": [out.audit_event(e) for e in events]}


@router.get("/audit/verify")
def audit_verify(actor: Actor, lab: LabDep) -> dict[str, Any]:
    authorize(actor, Permission.audit_verify, target="audit")
    with lab.read() as s:
        report = audit.verifier.verify_configured(s, lab.settings).summary()  # chain + signed checkpoints
    return {
        "ok": report.ok,
        "events": report.events,
        "first_bad_id": report.first_bad_id,
        "problem": report.problem,
    }
