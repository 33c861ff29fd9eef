"""Pages: login, home per role, organisations and users, projects, my account, audit log."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from countylab import audit
from countylab.errors import CountylabError, NotAuthenticated
from countylab.i18n import translator
from countylab.identity import projects as prj
from countylab.identity import service as ids
from countylab.identity.access import authorize, has_permission
from countylab.identity.login import LoginLocked
from countylab.identity.roles import OrgKind, Permission, Role
from countylab.identity.secrets import same
from countylab.storage.models import Dataset, Org, Project, User
from countylab.web.deps import (
    LANG_COOKIE,
    SESSION_COOKIE,
    Actor,
    LabDep,
    MaybeActor,
    login_with_password,
    set_session_cookie,
)
from countylab.web.params import EventId, FormId, Id
from countylab.web.ui.common import NAV, flash_redirect, form_action, lang_of, render

router = APIRouter(include_in_schema=False)
PRE_CSRF = "csrf_pre"


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_page(request: Request, principal: MaybeActor, next: str = "/") -> Response:
    if principal is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", next=_safe_next(next), login_csrf=token, demo=request.app.state.demo_logins
    )
    response.set_cookie(PRE_CSRF, token, httponly=True, samesite="strict", max_age=3600)
    return response


@router.post("/login")
def login(
    request: Request,
    lab: LabDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    pre = request.cookies.get(PRE_CSRF, "")
    t = translator(lang_of(request))
    if not pre or not same(pre, csrf_token):
        return flash_redirect("/login", t("login.csrf"), "error")
    try:
        done = login_with_password(lab, request, username, password)
    except (NotAuthenticated, LoginLocked) as exc:  # both audited, in their own transaction
        return flash_redirect(f"/login?next={_safe_next(next)}", exc.message(lang_of(request)), "error")
    user_lang = done.lang
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, lab, done.session.session_id)
    if not request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, user_lang, max_age=365 * 86400, samesite="lax")
    response.delete_cookie(PRE_CSRF)
    return response


@router.post("/logout")
def logout(request: Request, actor: Actor, lab: LabDep) -> Response:
    with lab.tx() as s:
        ids.close_session(s, actor, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{code}")
def switch_lang(code: str, next: str = "/") -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        LANG_COOKIE, "en" if code.startswith("en") else "zh-CN", max_age=365 * 86400, samesite="lax"
    )
    return response


@router.get("/")
def home(request: Request, principal: MaybeActor, lab: LabDep) -> Response:
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    with lab.read() as s:
        counts = {
            "orgs": s.scalar(select(func.count(Org.id))) or 0,
            "users": s.scalar(select(func.count(User.id))) or 0,
            "projects": s.scalar(select(func.count(Project.id))) or 0,
            "datasets": s.scalar(select(func.count(Dataset.id))) or 0,
        }
        my_projects = prj.visible_projects(s, principal)[:8]
        recent = audit.log.recent(s, limit=8) if has_permission(principal, Permission.audit_read) else []
    return render(
        request,
        "home.html",
        counts=counts,
        my_projects=my_projects,
        recent=recent,
        roles=sorted(principal.roles),
    )


@router.get("/soon/{capability}")
def coming_soon(request: Request, capability: str, principal: MaybeActor) -> Response:
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    known = {n.key for n in NAV}
    if capability not in known:
        capability = "home"
    return render(request, "soon.html", capability=capability)


# -- organisations and users ------------------------------------------------------------------


@router.get("/orgs")
def orgs_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    authorize(actor, Permission.user_read, target="orgs")
    with lab.read() as s:
        orgs = ids.list_orgs(s)
        users = ids.list_users(s)
    return render(
        request,
        "orgs.html",
        orgs=orgs,
        users=users,
        kinds=list(OrgKind),
        all_roles=list(Role),
        can_manage=has_permission(actor, Permission.user_manage),
    )


@router.post("/orgs")
def create_org(
    request: Request, actor: Actor, lab: LabDep, name: Annotated[str, Form()], kind: Annotated[str, Form()]
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            ids.create_org(s, actor, name=name, kind=kind)

    return form_action(request, "/orgs", run, "flash.org_created", name=name)


@router.post("/users")
def create_user(
    request: Request,
    actor: Actor,
    lab: LabDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    display_name: Annotated[str, Form()] = "",
    org_id: Annotated[str, Form()] = "",
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            ids.create_user(
                s,
                actor,
                username=username.strip(),
                password=password,
                display_name=display_name,
                roles=roles or [],
                org_id=int(org_id) if org_id.isdigit() else None,
            )

    return form_action(request, "/orgs", run, "flash.user_created", name=username)


@router.post("/users/{user_id}/roles")
def set_roles(
    request: Request,
    user_id: Id,
    actor: Actor,
    lab: LabDep,
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            ids.set_roles(s, actor, user_id, roles or [])

    return form_action(request, "/orgs", run, "flash.saved")


@router.post("/users/{user_id}/active")
def set_active(
    request: Request,
    user_id: Id,
    actor: Actor,
    lab: LabDep,
    active: Annotated[str, Form()],
    keep_tokens: Annotated[str, Form()] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            ids.set_active(s, actor, user_id, active == "1", revoke_tokens=keep_tokens != "1")

    return form_action(request, "/orgs", run, "flash.saved")


# -- my account -------------------------------------------------------------------------------


@router.get("/me")
def me_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        user = ids.get_user(s, actor.user_id or -1)
        tokens = ids.list_tokens(s, user.id)
    new_token = request.cookies.get("new_token")
    response = render(request, "me.html", user=user, tokens=tokens, new_token=new_token)
    if new_token:
        response.delete_cookie("new_token", path="/me")
    return response


@router.post("/me/tokens")
def create_token(
    request: Request,
    actor: Actor,
    lab: LabDep,
    name: Annotated[str, Form()] = "api",
    days: Annotated[int, Form(ge=1, le=3650)] = 90,  # the API's bounds (TokenIn)
) -> Response:
    t = translator(lang_of(request))
    try:
        with lab.tx() as s:
            issued = ids.create_token(s, actor, user_id=actor.user_id or -1, name=name, days=days)
    except CountylabError as exc:
        return flash_redirect("/me", exc.message(lang_of(request)), "error")
    response = flash_redirect("/me", t("flash.token_created"))
    # shown once on the next page view, then deleted; HttpOnly, path-scoped, 60 s
    response.set_cookie("new_token", issued.token, max_age=60, httponly=True, samesite="strict", path="/me")
    return response


@router.post("/me/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: Id, actor: Actor, lab: LabDep) -> Response:
    def run() -> None:
        with lab.tx() as s:
            ids.revoke_token(s, actor, token_id)

    return form_action(request, "/me", run, "flash.token_revoked")


@router.post("/me/password")
def change_password(
    request: Request,
    actor: Actor,
    lab: LabDep,
    old: Annotated[str, Form()],
    new: Annotated[str, Form()],
    revoke_tokens: Annotated[str, Form()] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            ids.change_password(
                s,
                actor,
                old=old,
                new=new,
                current_sid=request.cookies.get(SESSION_COOKIE),
                revoke_tokens=revoke_tokens == "1",
            )

    return form_action(request, "/me", run, "flash.password_changed")


# -- projects ---------------------------------------------------------------------------------


@router.get("/projects")
def projects_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        projects = prj.visible_projects(s, actor)
        org_choices = ids.list_orgs(s) if prj.may_choose_org(actor) else []
    return render(
        request,
        "projects.html",
        projects=projects,
        can_create=has_permission(actor, Permission.project_create),
        org_choices=org_choices,
    )


@router.post("/projects")
def create_project(
    request: Request,
    actor: Actor,
    lab: LabDep,
    slug: Annotated[str, Form()],
    title: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
    org_id: Annotated[str, Form()] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            prj.create_project(
                s,
                actor,
                slug=slug.strip(),
                title=title,
                description=description,
                org_id=int(org_id) if org_id.strip().isdigit() else None,
            )

    return form_action(request, "/projects", run, "flash.project_created", name=title)


@router.get("/projects/{project_id}")
def project_page(request: Request, project_id: Id, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        project = prj.get_project(s, actor, project_id)
        grants = prj.project_grants(s, project_id)
        granted = {g.dataset_id for g in grants}
        datasets = [
            d for d in s.execute(select(Dataset).order_by(Dataset.name)).scalars() if d.id not in granted
        ]
    is_owner = project_id in actor.owned_project_ids or bool(actor.roles & {Role.admin, Role.operator})
    return render(
        request,
        "project.html",
        project=project,
        grants=grants,
        datasets=datasets,
        can_manage=is_owner and has_permission(actor, Permission.project_manage),
        can_grant=has_permission(actor, Permission.grant_manage),
        can_emergency=has_permission(actor, Permission.grant_emergency),
    )


@router.post("/projects/{project_id}/members")
def add_member(
    request: Request,
    project_id: Id,
    actor: Actor,
    lab: LabDep,
    username: Annotated[str, Form()],
    role: Annotated[str, Form()] = "member",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            prj.add_member(s, actor, project_id, username=username.strip(), role=role)

    return form_action(request, f"/projects/{project_id}", run, "flash.member_added", name=username)


@router.post("/projects/{project_id}/members/{user_id}/remove")
def remove_member(request: Request, project_id: Id, user_id: Id, actor: Actor, lab: LabDep) -> Response:
    def run() -> None:
        with lab.tx() as s:
            prj.remove_member(s, actor, project_id, user_id)

    return form_action(request, f"/projects/{project_id}", run, "flash.member_removed")


@router.post("/projects/{project_id}/grants")
def grant(
    request: Request,
    project_id: Id,
    actor: Actor,
    lab: LabDep,
    dataset_id: FormId,
    reason: Annotated[str, Form(max_length=2000)] = "",
    ends_on: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """The admin's emergency grant (紧急授权): a reason and an end date, disclosed."""
    from countylab.operations import emergency
    from countylab.web.ui.agreement_pages import form_date

    def run() -> None:
        with lab.tx() as s:
            emergency.grant(
                s,
                actor,
                project_id,
                dataset_id,
                reason=reason,
                ends_on=form_date(ends_on, "ends_on"),
                now=lab.clock(),
            )

    return form_action(request, f"/projects/{project_id}", run, "flash.granted")


@router.post("/projects/{project_id}/grants/{dataset_id}/revoke")
def revoke_grant(request: Request, project_id: Id, dataset_id: Id, actor: Actor, lab: LabDep) -> Response:
    def run() -> None:
        with lab.tx() as s:
            prj.revoke_grant(s, actor, project_id, dataset_id)

    return form_action(request, f"/projects/{project_id}", run, "flash.grant_revoked")


# -- audit log --------------------------------------------------------------------------------


@router.get("/audit")
def audit_page(
    request: Request,
    actor: Actor,
    lab: LabDep,
    action: str = "",
    user: str = "",
    target: str = "",
    outcome: str = "",
    since: str = "",
    until: str = "",
    before: EventId = None,
) -> Response:
    """The audit log as people read it: filters, Chinese names, Beijing time, paged, exportable."""
    from countylab.web.ui import audit_view

    authorize(actor, Permission.audit_read, target="audit")
    return audit_view.page(request, lab, user, action, target, outcome, since, until, before)


def context_processor(request: Request) -> dict[str, Any]:
    """Values every template sees (wired in app.py)."""
    from countylab.web.ui.common import nav_for, read_flash
    from countylab.web.ui.notify_pages import notify_context

    principal = getattr(request.state, "principal", None)
    lang = lang_of(request)
    return {
        "t": translator(lang),
        "lang": lang,
        "principal": principal,
        "user_display": getattr(request.state, "user_display", principal.username if principal else ""),
        "csrf": getattr(request.state, "csrf", ""),
        "nav": nav_for(principal),
        "flash": read_flash(request),
        "path": request.url.path,
        "county": request.app.state.lab.settings.county_name,
        "role_label": lambda r: Role(r).label_zh if lang == "zh-CN" else Role(r).label_en,
        **notify_context(request),
    }
