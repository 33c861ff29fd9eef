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
    expert = "expert"  # 评审专家: reviews applications for 重要 data (operations platform)

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
    Role.expert: ("评审专家", "Expert reviewer"),
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
    # data operations platform (数据运营服务平台): scenario → application → approval → agreement
    scenario_publish = "scenario.publish"  # departments' staff, leaders and the operator publish scenarios
    scenario_propose = "scenario.propose"  # developers propose a scenario of their own (accepted first)
    capability_publish = "capability.publish"  # enterprises and institutes list what they offer (能力清单)
    scenario_subscribe = "scenario.subscribe"  # anyone logged in hears of new scenarios in a field
    application_submit = "application.submit"  # an organisation's member applies (用数申请)
    application_precheck = "application.precheck"  # the operator pre-checks materials (材料预审)
    application_consent = "application.consent"  # owning departments consent (部门同意)
    application_security = "application.security"  # the security officer reviews (安全审查), budgets, quotas
    application_expert = "application.expert"  # expert reviewers (专家评审)
    application_final = "application.final"  # the leader's final approval (终审)
    objection_file = "objection.file"  # anyone logged in objects during the public notice (公示)
    objection_answer = "objection.answer"  # the operator answers objections
    workflow_configure = "workflow.configure"  # the approval steps per grade and purpose
    accreditation_manage = "accreditation.manage"  # training records of safe people (培训合格)
    agreement_manage = "agreement.manage"  # draft, version and attach agreements (授权协议)
    agreement_sign = "agreement.sign"  # the two parties sign; who exactly is checked per agreement
    authorisation_manage = "authorisation.manage"  # suspend or revoke an authorisation at once
    grant_emergency = "grant.emergency"  # a direct grant without an application: admin only, disclosed
    ops_report = "ops.report"  # the operator's view, stage times, disclosure report
    # results showcase (成果展示中心)
    dashboard_compose = "dashboard.compose"  # stewards and operators compose dashboards
    dashboard_approve = "dashboard.approve"  # the security officer approves publishing one
    showcase_manage = "showcase.manage"  # project stories, county map boundaries, big-screen setup
    showcase_view = "showcase.view"  # in-lab dashboards and the big screen (the public pages need no login)


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
    Permission.scenario_publish: frozenset({Role.admin, Role.operator, Role.leader, Role.provider}),
    Permission.scenario_propose: frozenset({Role.developer}),
    Permission.capability_publish: frozenset({Role.developer, Role.operator}),
    Permission.scenario_subscribe: frozenset(Role),
    Permission.application_submit: frozenset({Role.developer}),
    Permission.application_precheck: frozenset({Role.operator}),
    Permission.application_consent: frozenset({Role.provider}),
    Permission.application_security: frozenset({Role.steward}),
    Permission.application_expert: frozenset({Role.expert}),
    Permission.application_final: frozenset({Role.leader}),
    Permission.objection_file: frozenset(Role),
    Permission.objection_answer: frozenset({Role.operator}),
    Permission.workflow_configure: frozenset({Role.admin}),
    Permission.accreditation_manage: frozenset({Role.operator, Role.admin}),
    Permission.agreement_manage: frozenset({Role.operator}),
    Permission.agreement_sign: frozenset({Role.operator, Role.developer}),
    Permission.authorisation_manage: frozenset({Role.steward}),
    Permission.grant_emergency: frozenset({Role.admin}),
    Permission.ops_report: frozenset({Role.operator, Role.admin, Role.steward, Role.leader}),
    Permission.dashboard_compose: frozenset({Role.steward, Role.operator}),
    Permission.dashboard_approve: frozenset({Role.steward}),
    Permission.showcase_manage: frozenset({Role.operator, Role.admin}),
    Permission.showcase_view: frozenset(Role),
}

#: roles that may see every project (oversight) without being members
OVERSIGHT_ROLES = frozenset({Role.admin, Role.steward, Role.operator, Role.checker})
