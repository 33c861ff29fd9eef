"""Projects, their members, and grants of datasets to projects.

The application/approval workflow arrives with the operations platform; until then an admin or
the security officer grants a dataset to a project directly, subject to the grade policy.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import OVERSIGHT_ROLES, Permission, Role
from countylab.storage.models import Dataset, Grant, Org, Project, ProjectMember, User

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")


def create_project(
    session: Session,
    actor: Principal,
    *,
    slug: str,
    title: str,
    description: str = "",
    org_id: int | None = None,
) -> Project:
    """A new project, owned by its creator.  It belongs to the creator's own organisation: the
    organisation's kind decides whether the project counts as in-domain (a department's) for the
    grade policy, so only admins and operators may file it under another one."""
    authorize(actor, Permission.project_create, target=f"project:{slug}")
    if org_id is not None and org_id != actor.org_id and not may_choose_org(actor):
        raise PermissionDenied(
            "只有平台管理员或运营方可以为项目指定其他单位；项目默认属于创建者所在单位",
            "Only admins and operators may file a project under another organisation; "
            "a project belongs to its creator's own organisation",
            permission=Permission.project_create.value,
            target=f"project:{slug}",
            reason="project_org",
        )
    if not _SLUG.match(slug):
        raise ValidationFailed(
            "项目标识只能含小写字母、数字和连字符（2–64位）",
            "Project slug may contain only a-z, 0-9 and '-' (2-64 chars)",
            field="slug",
        )
    if not title.strip():
        raise ValidationFailed("项目名称不能为空", "Project title is required", field="title")
    if session.execute(select(Project).where(Project.slug == slug)).scalar_one_or_none():
        raise Conflict(f"项目标识“{slug}”已存在", f"Project slug '{slug}' already exists", field="slug")
    if org_id is not None and session.get(Org, org_id) is None:
        raise NotFound(f"单位 {org_id} 不存在", f"Organisation {org_id} not found", field="org_id")
    project = Project(
        slug=slug,
        title=title.strip(),
        description=description.strip(),
        org_id=org_id if org_id is not None else actor.org_id,
        status="active",
        created_by=actor.user_id,
    )
    if actor.user_id is not None:
        project.members = [ProjectMember(user_id=actor.user_id, role="owner")]
    session.add(project)
    session.flush()
    audit.record(
        session,
        actor,
        "project.create",
        f"project:{project.id}",
        slug=slug,
        title=project.title,
        org_id=project.org_id,
    )
    return project


def may_choose_org(actor: Principal) -> bool:
    """Admins and operators (and the console) file projects under any organisation."""
    return actor.is_system or bool(actor.roles & {Role.admin, Role.operator})


def get_project(session: Session, actor: Principal, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"项目 {project_id} 不存在", f"Project {project_id} not found")
    authorize(
        actor, Permission.project_read, project_id=project_id, oversight=True, target=f"project:{project_id}"
    )
    return project


def visible_projects(session: Session, actor: Principal) -> list[Project]:
    q = select(Project).order_by(Project.created_at.desc(), Project.id.desc())
    if not actor.is_system and not actor.roles & OVERSIGHT_ROLES:
        q = q.where(Project.id.in_(actor.project_ids or {-1}))
    return list(session.execute(q).scalars())


def add_member(
    session: Session, actor: Principal, project_id: int, *, username: str, role: str = "member"
) -> ProjectMember:
    authorize(
        actor,
        Permission.project_manage,
        project_id=project_id,
        project_owner=True,
        target=f"project:{project_id}",
    )
    project = get_project(session, actor, project_id)
    if role not in ("owner", "member"):
        raise ValidationFailed(
            "成员角色只能是 owner 或 member", "Member role must be owner or member", field="role"
        )
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"用户“{username}”不存在", f"User '{username}' not found", field="username")
    if any(m.user_id == user.id for m in project.members):
        raise Conflict(f"{username} 已是项目成员", f"{username} is already a member")
    member = ProjectMember(project_id=project_id, user_id=user.id, role=role)
    session.add(member)
    session.flush()
    audit.record(session, actor, "project.member.add", f"project:{project_id}", user_id=user.id, role=role)
    return member


def remove_member(session: Session, actor: Principal, project_id: int, user_id: int) -> None:
    authorize(
        actor,
        Permission.project_manage,
        project_id=project_id,
        project_owner=True,
        target=f"project:{project_id}",
    )
    member = session.get(ProjectMember, (project_id, user_id))
    if member is None:
        raise NotFound("该用户不是项目成员", "That user is not a member of the project")
    owners = (
        session.execute(
            select(ProjectMember).where(ProjectMember.project_id == project_id, ProjectMember.role == "owner")
        )
        .scalars()
        .all()
    )
    if member.role == "owner" and len(owners) == 1:
        raise ValidationFailed("不能移除项目的最后一位负责人", "Cannot remove the project's last owner")
    session.delete(member)
    audit.record(session, actor, "project.member.remove", f"project:{project_id}", user_id=user_id)


def grant_dataset(
    session: Session, actor: Principal, project_id: int, dataset_id: int, *, note: str = ""
) -> Grant:
    """A system-internal grant (the lab's own projects: a showcase budget project …), listed as
    such in the disclosure report.  People grant through an authorisation (用数申请 → 授权协议) or,
    in an emergency, an admin's emergency grant (:mod:`countylab.operations.emergency`)."""
    if not actor.is_system:
        raise PermissionDenied(
            "直接授权已停用：数据经用数申请和授权协议授权；紧急情况由平台管理员使用紧急授权（须写明理由和结束日期）",
            "Direct grants are closed: datasets are granted through an application and its agreement; "
            "in an emergency an admin uses the emergency grant (with a reason and an end date)",
            permission=Permission.grant_emergency.value,
            target=f"project:{project_id}",
            reason="direct_grant",
        )
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"项目 {project_id} 不存在", f"Project {project_id} not found")
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"数据集 {dataset_id} 不存在", f"Dataset {dataset_id} not found")
    _check_grant_policy(dataset)
    exists = session.execute(
        select(Grant).where(Grant.project_id == project_id, Grant.dataset_id == dataset_id)
    ).scalar_one_or_none()
    if exists:
        raise Conflict("该数据集已授权给此项目", "This dataset is already granted to the project")
    grant = Grant(project_id=project_id, dataset_id=dataset_id, granted_by=actor.user_id, note=note)
    session.add(grant)
    session.flush()
    from countylab.operations.emergency import record_system

    record_system(session, grant, note)
    audit.record(session, actor, "grant.create", f"project:{project_id}", dataset_id=dataset_id, note=note)
    return grant


def _check_grant_policy(dataset: Dataset) -> None:
    """核心数据 never goes to external projects (docs/reference/policy.md)."""
    if dataset.grade == "core":
        raise ValidationFailed(
            "核心数据不得授权给外部项目", "Core data cannot be granted to projects", dataset_id=dataset.id
        )


def revoke_grant(session: Session, actor: Principal, project_id: int, dataset_id: int) -> None:
    authorize(actor, Permission.grant_manage, target=f"project:{project_id}")
    grant = session.execute(
        select(Grant).where(Grant.project_id == project_id, Grant.dataset_id == dataset_id)
    ).scalar_one_or_none()
    if grant is None:
        raise NotFound("没有这项授权", "No such grant")
    session.delete(grant)
    audit.record(session, actor, "grant.revoke", f"project:{project_id}", dataset_id=dataset_id)


def project_grants(session: Session, project_id: int) -> list[Grant]:
    return list(session.execute(select(Grant).where(Grant.project_id == project_id)).scalars())


def authorize_member(
    session: Session, principal: Principal, permission: Permission, project_id: int, target: str = ""
) -> None:
    """:func:`authorize` for acting inside a project, with membership read from the database.

    A principal's memberships are cached for a few seconds (and per process), so a member removed
    from another process, or by the console, could go on spending the project's privacy budget,
    running code or asking releases until the cache expires.  Actions that spend, run or release
    check the membership row in their own transaction instead: removal takes effect at once,
    on every server."""
    authorize(principal, permission, project_id=project_id, target=target)
    if principal.is_system:
        return
    still = session.execute(
        select(ProjectMember.user_id).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == principal.user_id
        )
    ).first()
    if still is None:
        raise PermissionDenied(
            "没有权限：您已不是该项目的成员",
            "Permission denied: you are no longer a member of this project",
            permission=permission.value,
            target=target,
            reason="project_member",
        )
