"""The one permission check every route and command goes through.

``authorize`` decides from the role table (``roles.PERMISSIONS``) and, for project-scoped
permissions, from membership.  A refusal raises ``PermissionDenied``; the caller's entry
point records a ``permission.denied`` audit event in its own transaction (see
``countylab.lab.Lab.record_denial``), so a refused attempt is logged even though the request's
own transaction rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from countylab.errors import PermissionDenied
from countylab.identity.roles import OVERSIGHT_ROLES, PERMISSIONS, Permission, Role


@dataclass(frozen=True)
class Principal:
    """Who is acting: a logged-in user (web session or API token) or the system itself."""

    user_id: int | None
    username: str
    roles: frozenset[Role]
    org_id: int | None = None
    project_ids: frozenset[int] = field(default_factory=frozenset)
    owned_project_ids: frozenset[int] = field(default_factory=frozenset)
    via: str = "session"  # session | token | cli | system

    @property
    def is_system(self) -> bool:
        return self.via in ("system", "cli")


SYSTEM = Principal(user_id=None, username="system", roles=frozenset(Role), via="system")


def cli_principal() -> Principal:
    """The operator at the server's console: local shell access already implies full control."""
    return Principal(user_id=None, username="cli", roles=frozenset(Role), via="cli")


def has_permission(principal: Principal, permission: Permission) -> bool:
    return principal.is_system or bool(principal.roles & PERMISSIONS[permission])


def authorize(
    principal: Principal,
    permission: Permission,
    *,
    project_id: int | None = None,
    project_owner: bool = False,
    oversight: bool = False,
    org_id: int | None = None,
    target: str = "",
) -> None:
    """Raise PermissionDenied unless ``principal`` may exercise ``permission``.

    ``project_id``: the permission is scoped to that project: its members only.  Members-only is
    the default because a forgotten option must fail closed: a caller that lets stewards and
    checkers in without membership says so with ``oversight=True``, and only for reading.
    ``oversight``: with ``project_id``, oversight roles (``OVERSIGHT_ROLES``) pass without being
    members (they watch every project; they never act inside one).
    ``project_owner``: instead the principal must own the project (or be admin/operator).
    ``org_id``: the permission is scoped to that organisation (its own members, or admins).
    """
    if principal.is_system:
        return
    if not principal.roles & PERMISSIONS[permission]:
        raise _denied(permission, target, "role")
    if project_id is not None:
        staff = principal.roles & {Role.admin, Role.operator}
        if project_owner:
            if not staff and project_id not in principal.owned_project_ids:
                raise _denied(permission, target, "project_owner")
        else:
            watcher = oversight and bool(principal.roles & OVERSIGHT_ROLES)
            if project_id not in principal.project_ids and not watcher:
                raise _denied(permission, target, "project_member")
    if org_id is not None and Role.admin not in principal.roles and principal.org_id != org_id:
        raise _denied(permission, target, "organisation")


def _denied(permission: Permission, target: str, why: str) -> PermissionDenied:
    zh = {
        "role": "您的角色没有此权限",
        "project_member": "您不是该项目的成员",
        "project_owner": "只有项目负责人可以执行此操作",
        "organisation": "只能操作本单位的数据",
    }[why]
    en = {
        "role": "your roles do not include this permission",
        "project_member": "you are not a member of this project",
        "project_owner": "only the project owner may do this",
        "organisation": "you may only act on your own organisation's data",
    }[why]
    from countylab.labels import label  # words only; the code stays in details.permission

    return PermissionDenied(
        f"没有权限（{label('permission', permission, 'zh-CN')}）：{zh}",
        f"Permission denied ({label('permission', permission, 'en')}): {en}",
        permission=permission.value,
        target=target,
        reason=why,
    )
