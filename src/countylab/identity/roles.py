"""The roles of the lab and the permissions each one holds (docs/reference/policy.md).

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
    token_self = "token.self"  # noqa: S105 - a permission name
    # projects
    project_create = "project.create"
    project_read = "project.read"  # members, or staff with oversight
    project_manage = "project.manage"  # owners and admins: members
    grant_manage = "grant.manage"
    # catalog
    dataset_read = "dataset.read"
    dataset_write = "dataset.write"  # providers of the owning department
    dataset_grade = "dataset.grade"  # stewards
    # compute center (sandbox jobs)
    job_submit = "job.submit"  # project members run code on the project's granted data
    job_quota = "job.quota"  # stewards and admins set a project's compute quota
    # audit
    audit_read = "audit.read"
    audit_verify = "audit.verify"
    # DP SQL gateway (privacy)
    query_run = "query.run"  # analysts, in projects they are members of
    query_history = "query.history"  # every project's query history (oversight)
    budget_manage = "budget.manage"  # stewards set privacy budgets
    # airlock and model registry
    release_create = "release.create"  # developers of the project: request, submit, download
    release_read = "release.read"
    release_review = "release.review"  # checkers (and stewards as security officer)
    model_register = "model.register"
    model_approve = "model.approve"
    model_predict = "model.predict"  # project members (data-product callers later)


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
    Permission.job_submit: frozenset({Role.admin, Role.operator, Role.developer}),
    Permission.job_quota: frozenset({Role.admin, Role.steward}),
    Permission.audit_read: frozenset({Role.admin, Role.steward}),
    Permission.audit_verify: frozenset({Role.admin, Role.steward}),
    Permission.query_run: frozenset({Role.developer}),
    Permission.query_history: frozenset({Role.admin, Role.steward}),
    Permission.budget_manage: frozenset({Role.steward}),
    Permission.release_create: frozenset({Role.developer}),
    Permission.release_read: frozenset({Role.developer, Role.checker, Role.steward, Role.admin}),
    Permission.release_review: frozenset({Role.checker, Role.steward}),
    Permission.model_register: frozenset({Role.developer}),
    Permission.model_approve: frozenset({Role.steward, Role.checker}),
    Permission.model_predict: frozenset(Role),  # membership (or a data-product key) decides
}

#: roles that may see every project (oversight) without being members
OVERSIGHT_ROLES = frozenset({Role.admin, Role.steward, Role.operator, Role.checker})
