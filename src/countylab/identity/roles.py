"""The roles of DESIGN.md §1 and the permissions each one holds.

``PERMISSIONS`` is the one table that says who may do what; ``countylab.identity.access``
is the one function that consults it.  Project-scoped permissions additionally need
membership of the project, checked there too.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    provider = "provider"
    steward = "steward"
    checker = "checker"
    developer = "developer"
    leader = "leader"
    operator = "operator"

    @property
    def label_zh(self) -> str:
        return _LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _LABELS[self][1]


_LABELS: dict[Role, tuple[str, str]] = {
    Role.admin: ("平台管理员", "Platform admin"),
    Role.provider: ("数据提供方", "Data provider"),
    Role.steward: ("数据安全官", "Security officer"),
    Role.checker: ("结果审核员", "Output checker"),
    Role.developer: ("开发者", "Developer"),
    Role.leader: ("领导 / 公众", "Leader / public"),
    Role.operator: ("运营方", "Operator"),
}


class OrgKind(StrEnum):
    department = "department"
    enterprise = "enterprise"
    research = "research"
    platform = "platform"

    @property
    def label_zh(self) -> str:
        return {"department": "部门", "enterprise": "企业", "research": "科研机构", "platform": "平台"}[self]


class Permission(StrEnum):
    # identity
    org_manage = "org.manage"
    user_manage = "user.manage"
    user_read = "user.read"
    token_self = "token.self"
    # projects
    project_create = "project.create"
    project_read = "project.read"  # members, or staff with oversight
    project_manage = "project.manage"  # owners and admins: members
    grant_manage = "grant.manage"
    # catalog
    dataset_read = "dataset.read"
    dataset_write = "dataset.write"  # providers of the owning department
    dataset_grade = "dataset.grade"  # stewards
    # audit
    audit_read = "audit.read"
    audit_verify = "audit.verify"


PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.org_manage: frozenset({Role.admin}),
    Permission.user_manage: frozenset({Role.admin}),
    Permission.user_read: frozenset({Role.admin, Role.steward, Role.operator}),
    Permission.token_self: frozenset(Role),
    Permission.project_create: frozenset({Role.admin, Role.operator, Role.developer}),
    Permission.project_read: frozenset(Role),
    Permission.project_manage: frozenset({Role.admin, Role.operator, Role.developer}),
    Permission.grant_manage: frozenset({Role.admin, Role.steward}),
    Permission.dataset_read: frozenset(Role),
    Permission.dataset_write: frozenset({Role.admin, Role.provider}),
    Permission.dataset_grade: frozenset({Role.steward}),
    Permission.audit_read: frozenset({Role.admin, Role.steward}),
    Permission.audit_verify: frozenset({Role.admin, Role.steward}),
}

#: roles that may see every project (oversight) without being members
OVERSIGHT_ROLES = frozenset({Role.admin, Role.steward, Role.operator, Role.checker})
