"""The approval workflow (审批流程): 材料预审 → 部门同意 → 安全审查 → 专家评审 → 终审 → 公示.

Which review steps an application goes through comes from the configuration
(:mod:`countylab.operations.workflow_config`) for its highest grade and its purpose; this module
runs them.  Each review round of an application has its own step rows (``approval_steps``): a
return to the applicant or an upheld objection starts the next round and the earlier rounds
stay as the history.

Every decision:

* checks the step's permission, and who may take it (a consent only by the owning department,
  an expert vote only by an assigned expert, nobody of the applicant's own organisation);
* refuses to approve 核心数据 for an external organisation, at every step, whatever the config;
* carries a reason (required to refuse or return), is audited and notifies the next people;
* updates its step row ``WHERE version = :read`` and bumps the application's version: two
  reviewers deciding the same step at once, or two steps whose decisions both would open the next
  stage, cannot both win (the loser's transaction rolls back whole with a clear message).

The public notice and objections are in :mod:`countylab.operations.publicity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from countylab import audit, notify
from countylab.catalog.grading import Grade
from countylab.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission, Role
from countylab.operations import states
from countylab.operations.states import ApplicationStatus
from countylab.operations.terms import ApprovedTerms, Channel, DatasetTerms, QuotaTerms
from countylab.operations.workflow_config import Config, load, version_at
from countylab.policy import POLICY, Action, dp_budget_limits
from countylab.privacy.budget import dataset_policy
from countylab.storage.models import Dataset, Org, User
from countylab.storage.operations_models import Application, ApplicationDataset, ApplicationMember
from countylab.storage.workflow_models import ApprovalExpert, ApprovalStep

STEP_PERMISSION = {
    "precheck": Permission.application_precheck,
    "consent": Permission.application_consent,
    "security": Permission.application_security,
    "expert": Permission.application_expert,
    "final": Permission.application_final,
}
STEP_ROLE = {
    "precheck": Role.operator,
    "consent": Role.provider,
    "security": Role.steward,
    "expert": Role.expert,
    "final": Role.leader,
}
STEP_ZH = {
    "precheck": "材料预审",
    "consent": "部门同意",
    "security": "安全审查",
    "expert": "专家评审",
    "final": "终审",
}
#: decisions each step allows (approve opens the next stage; refuse rejects; return sends back)
DECISIONS = {
    "precheck": ("pass", "return", "reject"),
    "consent": ("approve", "refuse"),
    "security": ("approve", "return", "refuse"),
    "final": ("approve", "return", "refuse"),
}
EXTERNAL_KINDS = frozenset({"enterprise", "research"})
OPEN, WAITING, APPROVED, REFUSED, RETURNED, CLOSED = (
    "open",
    "waiting",
    "approved",
    "refused",
    "returned",
    "closed",
)
DEFAULT_QUOTA: dict[str, Any] = {
    "max_cpu": 2.0,
    "max_memory_mb": 4096,
    "max_time_s": 3600,
    "cpu_seconds": 36000.0,
    "concurrent_jobs": 2,
    "period_days": 30,
}


# -- reading -----------------------------------------------------------------------------------


def get_application(session: Session, application_id: int) -> Application:
    app = session.get(Application, application_id)
    if app is None:
        raise NotFound(f"没有编号为 {application_id} 的申请", f"no application {application_id}")
    return app


def requested(session: Session, app: Application) -> list[tuple[ApplicationDataset, Dataset]]:
    rows = session.execute(
        select(ApplicationDataset, Dataset)
        .join(Dataset, Dataset.id == ApplicationDataset.dataset_id)
        .where(ApplicationDataset.application_id == app.id)
        .order_by(Dataset.id)
    ).all()
    return [(r[0], r[1]) for r in rows]


def highest_grade(datasets: list[Dataset]) -> Grade:
    grades = [Grade(d.grade) for d in datasets]
    return max(grades, key=lambda g: g.rank) if grades else Grade.general_1


def is_external(session: Session, org_id: int) -> bool:
    org = session.get(Org, org_id)
    return org is not None and org.kind in EXTERNAL_KINDS


def steps_of(session: Session, app_id: int, round_: int | None = None) -> list[ApprovalStep]:
    q = select(ApprovalStep).where(ApprovalStep.application_id == app_id)
    if round_ is not None:
        q = q.where(ApprovalStep.round == round_)
    return list(
        session.execute(q.order_by(ApprovalStep.round, ApprovalStep.stage, ApprovalStep.id)).scalars()
    )


def last_round(session: Session, app_id: int) -> int:
    r = session.execute(select(func.max(ApprovalStep.round)).where(ApprovalStep.application_id == app_id))
    return int(r.scalar() or 0)


def config_of(session: Session, app: Application) -> Config:
    """The configuration version the application was submitted under."""
    v = session.execute(
        select(ApprovalStep.config_version)
        .where(ApprovalStep.application_id == app.id)
        .order_by(ApprovalStep.round.desc(), ApprovalStep.id)
        .limit(1)
    ).scalar()
    return load(session, int(v) if v is not None else version_at(session, app.submitted_at))


# -- guards ------------------------------------------------------------------------------------


def _guard(session: Session, principal: Principal, app: Application, kind: str, *, approving: bool) -> None:
    target = f"application:{app.id}"
    authorize(principal, STEP_PERMISSION[kind], target=target)
    if not principal.is_system and principal.org_id is not None and principal.org_id == app.org_id:
        raise PermissionDenied(
            f"申请方（本单位）人员不能审批本单位的申请（{STEP_ZH[kind]}）",
            f"a member of the applying organisation cannot decide its application ({kind})",
            permission=str(STEP_PERMISSION[kind]),
            reason="applicant_org",
            target=target,
        )
    if approving:
        refuse_core_external(session, app)


def refuse_core_external(session: Session, app: Application) -> None:
    """核心数据 is never granted to an external organisation (the configuration cannot change it)."""
    if not is_external(session, app.org_id):
        return
    core = [d.title for _, d in requested(session, app) if Grade(d.grade) == Grade.core]
    if core:
        raise PermissionDenied(
            f"核心数据不向外部机构授权：{'、'.join(core)}",
            f"core data is never granted to an external organisation: {', '.join(core)}",
            permission="application.core_external",
            reason="core_external",
            target=f"application:{app.id}",
        )


def _reason(decision: str, reason: str, *, required: bool) -> str:
    text = (reason or "").strip()
    if required and not text:
        raise ValidationFailed(
            "退回或不同意必须写明理由",
            "a return or refusal needs a reason",
            field="reason",
            reason="required",
        )
    if len(text) > 4000:
        raise ValidationFailed(
            "理由不能超过 4000 字", "the reason may be at most 4000 characters", field="reason"
        )
    return text


def _touch(session: Session, app: Application, now: datetime) -> None:
    """Bump the application's version: decisions on one application serialise on it."""
    done = session.execute(
        update(Application)
        .where(Application.id == app.id, Application.version == app.version)
        .values(version=app.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"申请 {app.number} 刚被他人处理，请刷新后再试",
            f"Application {app.number} was just changed by someone else; reload and try again",
        )
    session.refresh(app)


def _already(step: ApprovalStep, app: Application) -> Conflict:
    return Conflict(
        f"申请 {app.number} 的“{STEP_ZH[step.kind]}”已有决定，请刷新查看",
        f"the {step.kind} step of application {app.number} was already decided; reload to see it",
        reason="already_decided",
    )


def _close_step(
    session: Session,
    step: ApprovalStep,
    status: str,
    principal: Principal,
    reason: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """Record the decision on ``step`` if nobody decided it since it was read."""
    values: dict[str, Any] = {
        "status": status,
        "decided_at": now,
        "decided_by": principal.user_id,
        "reason": reason,
        "version": step.version + 1,
    }
    if details is not None:
        values["details"] = details
    done = session.execute(
        update(ApprovalStep)
        .where(ApprovalStep.id == step.id, ApprovalStep.version == step.version, ApprovalStep.status == OPEN)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise _already(step, get_application(session, step.application_id))
    session.refresh(step)


# -- 材料预审 ------------------------------------------------------------------------------------


def precheck(
    session: Session, principal: Principal, application_id: int, decision: str, reason: str, *, now: datetime
) -> Application:
    """The operator's materials pre-check: pass (the review steps open), return, or reject."""
    app = get_application(session, application_id)
    if decision not in DECISIONS["precheck"]:
        raise ValidationFailed(
            f"预审结论只能是 {'/'.join(DECISIONS['precheck'])}",
            "decision must be pass, return or reject",
            field="decision",
        )
    _guard(session, principal, app, "precheck", approving=decision == "pass")
    if app.status != ApplicationStatus.submitted:
        raise Conflict(
            f"申请 {app.number} 的材料预审已有决定或不在待预审状态（当前：{app.status}）",
            f"application {app.number} is not waiting for the pre-check (it is {app.status})",
            reason="already_decided",
        )
    text = _reason(decision, reason, required=decision != "pass")
    round_ = last_round(session, app.id) + 1
    config = load(session, version_at(session, app.submitted_at))
    status = {"pass": APPROVED, "return": RETURNED, "reject": REFUSED}[decision]
    step = ApprovalStep(
        application_id=app.id,
        round=round_,
        kind="precheck",
        scope="",
        org_id=None,
        stage=0,
        status=status,
        config_version=config.version,
        opened_at=app.submitted_at or now,
        due_at=config.due("precheck", app.submitted_at or now),
        decided_at=now,
        decided_by=principal.user_id,
        reason=text,
        details={},
        version=1,
    )
    number = app.number  # read now: after a failed flush the session cannot load it
    session.add(step)
    try:
        session.flush()
    except IntegrityError:  # a concurrent pre-check of the same round won; this transaction rolls back
        raise Conflict(
            f"申请 {number} 的材料预审已有决定",
            f"the pre-check of {number} was already decided",
            reason="already_decided",
        ) from None
    target = f"application:{app.id}"
    if decision == "pass":
        states.move(session, app, ApplicationStatus.in_review, reason=text, now=now)
        _open_round(session, app, round_, config, now, actor_id=principal.user_id)
    elif decision == "return":
        states.move(session, app, ApplicationStatus.returned, reason=text, now=now)
    else:
        states.move(session, app, ApplicationStatus.rejected, reason=text, now=now)
    audit.record(
        session,
        principal,
        "application.precheck",
        target,
        decision=decision,
        reason=text,
        round=round_,
        number=app.number,
    )
    _tell_applicant(session, app, "precheck", decision, text, principal)
    return app


def _open_round(
    session: Session, app: Application, round_: int, config: Config, now: datetime, *, actor_id: int | None
) -> None:
    """Create the review steps of ``round_`` from the configuration and open the first stage."""
    pairs = requested(session, app)
    grade = highest_grade([d for _, d in pairs])
    stages = config.path_for(grade, app.purpose, renewal=app.renewal_of is not None)
    for index, stage in enumerate(stages, start=1):
        for kind in stage:
            scopes: list[tuple[str, int | None]] = [("", None)]
            if kind == "consent":
                owners = sorted({d.org_id for _, d in pairs})
                scopes = [(f"org:{o}", o) for o in owners]
            for scope, org_id in scopes:
                session.add(
                    ApprovalStep(
                        application_id=app.id,
                        round=round_,
                        kind=kind,
                        scope=scope,
                        org_id=org_id,
                        stage=index,
                        status=WAITING,
                        config_version=config.version,
                        reason="",
                        details={
                            "experts_needed": config.expert_agree,
                            "experts_assign": config.expert_assign,
                        }
                        if kind == "expert"
                        else {},
                        version=1,
                    )
                )
    session.flush()
    _advance(session, app, round_, config, now, actor_id=actor_id)


def _advance(
    session: Session, app: Application, round_: int, config: Config, now: datetime, *, actor_id: int | None
) -> None:
    """Open the next stage when the current one is all approved; start the notice after the last."""
    steps = [s for s in steps_of(session, app.id, round_) if s.kind != "precheck"]
    if any(s.status == OPEN for s in steps):
        return
    waiting = [s for s in steps if s.status == WAITING]
    if waiting:
        stage = min(s.stage for s in waiting)
        for s in waiting:
            if s.stage == stage:
                s.status, s.opened_at, s.due_at = OPEN, now, config.due(s.kind, now)
                _notify_step(session, app, s, actor_id)
        session.flush()
        return
    if steps and all(passed(s) for s in steps):
        from countylab.operations.publicity import start_notice  # the notice follows the last approval

        start_notice(session, app, round_, config.notice_days_for(renewal=app.renewal_of is not None), now)


def passed(step: ApprovalStep) -> bool:
    """Approved, or a department's refusal that only dropped its own datasets (the application
    went on with the rest, :func:`_drop_datasets`)."""
    return step.status == APPROVED or (
        step.kind == "consent" and step.status == REFUSED and bool((step.details or {}).get("dropped"))
    )


def _partial_refusal(session: Session, app: Application, step: ApprovalStep) -> list[dict[str, Any]]:
    """The datasets a department's refusal drops, when datasets of other departments remain
    (empty: nothing else remains, the refusal rejects the application as before)."""
    pairs = requested(session, app)
    mine = [(ad, ds) for ad, ds in pairs if ds.org_id == step.org_id]
    if not mine or len(mine) == len(pairs):
        return []
    return [
        {"dataset_id": ds.id, "title": ds.title, "columns": list(ad.columns) if ad.columns else None}
        for ad, ds in mine
    ]


def _drop_datasets(session: Session, app: Application, dropped: list[dict[str, Any]]) -> None:
    """Take the refused datasets out of the application: the security terms, the approved terms,
    the agreement and the authorisation are all built from what it still asks for."""
    session.execute(
        delete(ApplicationDataset)
        .where(
            ApplicationDataset.application_id == app.id,
            ApplicationDataset.dataset_id.in_([int(d["dataset_id"]) for d in dropped]),
        )
        .execution_options(synchronize_session=False)
    )
    session.flush()


def dropped_datasets(session: Session, app_id: int) -> list[dict[str, Any]]:
    """Every dataset a department's refusal dropped from the application, with the refusal's
    department, reason, time and round (for the applicant's page and later reviewers)."""
    out: list[dict[str, Any]] = []
    for st in steps_of(session, app_id):
        if st.kind != "consent" or st.status != REFUSED:
            continue
        for d in (st.details or {}).get("dropped", []):
            out.append(
                {
                    **d,
                    "org_id": st.org_id,
                    "reason": st.reason,
                    "decided_at": st.decided_at,
                    "decided_by": st.decided_by,
                    "round": st.round,
                    "step_id": st.id,
                }
            )
    return out


def _notify_step(session: Session, app: Application, step: ApprovalStep, actor_id: int | None) -> None:
    role = STEP_ROLE[step.kind]
    if step.kind == "consent":
        recipients = notify.to_roles(role, org_id=step.org_id)
    elif step.kind == "expert":
        recipients = notify.to_roles(Role.operator)  # the operator assigns the experts first
    else:
        recipients = notify.to_roles(role)
    notify.emit(
        session,
        "workflow.step_open",
        recipients=recipients,
        target=f"application:{app.id}",
        link="/reviews",
        actor_id=actor_id,
        number=app.number,
        title=app.title,
        step={"zh-CN": STEP_ZH[step.kind], "en": step.kind},
    )


def _tell_applicant(
    session: Session, app: Application, kind: str, decision: str, reason: str, principal: Principal
) -> None:
    notify.emit(
        session,
        "workflow.decided",
        recipients=notify.to_users(app.applicant_id),
        target=f"application:{app.id}",
        link=f"/applications/{app.id}",
        actor_id=principal.user_id,
        number=app.number,
        title=app.title,
        step={"zh-CN": STEP_ZH[kind], "en": kind},
        decision={"zh-CN": _DECISION_ZH.get(decision, decision), "en": decision},
        reason=reason,
    )


_DECISION_ZH = {
    "pass": "通过",
    "approve": "同意",
    "refuse": "不同意",
    "return": "退回",
    "reject": "不予受理",
    "agree": "同意",
    "disagree": "不同意",
}


# -- 部门同意 / 安全审查 / 终审 ------------------------------------------------------------------------


def get_step(session: Session, step_id: int) -> ApprovalStep:
    step = session.get(ApprovalStep, step_id)
    if step is None:
        raise NotFound(f"没有编号为 {step_id} 的审批步骤", f"no approval step {step_id}")
    return step


def open_step(
    session: Session, app: Application, kind: str, principal: Principal | None = None
) -> ApprovalStep:
    """The open step of ``kind`` in the current round (for a consent: the principal's department's)."""
    q = select(ApprovalStep).where(
        ApprovalStep.application_id == app.id, ApprovalStep.kind == kind, ApprovalStep.status == OPEN
    )
    rows = list(session.execute(q).scalars())
    if kind == "consent" and principal is not None and not principal.is_system:
        mine = [s for s in rows if s.org_id == principal.org_id]
        if not mine and rows:
            raise PermissionDenied(
                "只有数据所属部门才能就其数据集表示同意",
                "only a department that owns a requested dataset may consent",
                permission=str(Permission.application_consent),
                reason="not_owning_department",
                target=f"application:{app.id}",
            )
        rows = mine
    if not rows:
        raise Conflict(
            f"申请 {app.number} 当前没有待办的“{STEP_ZH.get(kind, kind)}”",
            f"application {app.number} has no open {kind} step",
            reason="already_decided",
        )
    return rows[0]


@dataclass(frozen=True)
class SecurityTerms:
    """What the security officer sets: channels, columns, budgets per dataset, quota, conditions."""

    channels: tuple[str, ...] | None = None  # None: the channels applied for
    columns: dict[int, list[str] | None] | None = None  # dataset id -> columns (narrowing)
    budgets: dict[int, tuple[float | None, float | None]] | None = None  # dataset id -> (ε, δ)
    quota: dict[str, Any] | None = None
    conditions: str = ""


def decide(
    session: Session,
    principal: Principal,
    step_id: int,
    decision: str,
    reason: str,
    *,
    now: datetime,
    terms: SecurityTerms | None = None,
) -> ApprovalStep:
    """A decision on a consent, security or final step (experts vote with :func:`expert_vote`)."""
    step = get_step(session, step_id)
    app = get_application(session, step.application_id)
    if step.kind not in ("consent", "security", "final"):
        raise ValidationFailed(
            "此步骤不能这样办理", f"a {step.kind} step is not decided this way", field="step", reason="kind"
        )
    if decision not in DECISIONS[step.kind]:
        raise ValidationFailed(
            f"“{STEP_ZH[step.kind]}”的结论只能是 {'/'.join(DECISIONS[step.kind])}",
            f"decision must be one of {', '.join(DECISIONS[step.kind])}",
            field="decision",
        )
    _guard(session, principal, app, step.kind, approving=decision == "approve")
    if step.kind == "consent" and not principal.is_system and principal.org_id != step.org_id:
        raise PermissionDenied(
            "只有数据所属部门才能就其数据集表示同意",
            "only the department that owns the datasets may decide this consent",
            permission=str(Permission.application_consent),
            reason="not_owning_department",
            target=f"application:{app.id}",
        )
    if step.status != OPEN or app.status != ApplicationStatus.in_review:
        raise _already(step, app)
    text = _reason(decision, reason, required=decision != "approve")
    details: dict[str, Any] | None = None
    if step.kind == "security" and decision == "approve":
        details = validate_terms(session, app, terms or SecurityTerms())
    dropped = _partial_refusal(session, app, step) if step.kind == "consent" and decision == "refuse" else []
    if dropped:
        details = {"dropped": dropped}
    status = {"approve": APPROVED, "refuse": REFUSED, "return": RETURNED}[decision]
    _close_step(session, step, status, principal, text, now, details)
    # one winner per application: a second department deciding at once loses here and rolls back
    # whole, so two refusals cannot both drop "their" datasets and leave the application empty
    _touch(session, app, now)
    config = config_of(session, app)
    if dropped:
        _drop_datasets(session, app, dropped)
        _advance(session, app, step.round, config, now, actor_id=principal.user_id)
    elif decision == "approve":
        _advance(session, app, step.round, config, now, actor_id=principal.user_id)
    else:
        _end_round(session, app, step.round)
        new = ApplicationStatus.rejected if decision == "refuse" else ApplicationStatus.returned
        states.move(session, app, new, reason=text, now=now)
    audit.record(
        session,
        principal,
        f"application.{step.kind}",
        f"application:{app.id}",
        decision=decision,
        reason=text,
        step=step.id,
        round=step.round,
        number=app.number,
        terms=details if not dropped else None,
        dropped=[d["dataset_id"] for d in dropped] or None,
    )
    if dropped:
        titles = "、".join(str(d["title"]) for d in dropped)
        text = f"{text}（去除数据集 dropped: {titles}）"
    _tell_applicant(session, app, step.kind, decision, text, principal)
    return step


def _end_round(session: Session, app: Application, round_: int) -> None:
    session.execute(
        update(ApprovalStep)
        .where(
            ApprovalStep.application_id == app.id,
            ApprovalStep.round == round_,
            ApprovalStep.status.in_([OPEN, WAITING]),
        )
        .values(status=CLOSED)
        .execution_options(synchronize_session=False)
    )


def validate_terms(session: Session, app: Application, terms: SecurityTerms) -> dict[str, Any]:
    """Check the security officer's terms against the grade policy; the stored form of them."""
    pairs = requested(session, app)
    external = is_external(session, app.org_id)
    channels = list(terms.channels) if terms.channels is not None else list(app.channels or [])
    if not channels:
        raise ValidationFailed("至少保留一种使用方式", "keep at least one channel", field="channels")
    for c in channels:
        if c not in {x.value for x in Channel}:
            raise ValidationFailed(f"未知的使用方式：{c}", f"unknown channel: {c}", field="channels")
        if c not in (app.channels or []):
            raise ValidationFailed(
                f"不能增加申请中没有的使用方式：{c}",
                f"a channel the application did not ask for cannot be added: {c}",
                field="channels",
            )
    out: dict[str, Any] = {
        "channels": channels,
        "datasets": {},
        "quota": None,
        "conditions": terms.conditions.strip(),
    }
    for ad, ds in pairs:
        grade = Grade(ds.grade)
        rules = POLICY[grade]
        overrides = dataset_policy(ds)
        deny = overrides.deny if overrides else frozenset()
        where = f"{ds.title}（{grade.label_zh}）"
        if external and not rules.external_projects:
            raise PermissionDenied(
                f"{where}不向外部机构开放",
                f"{ds.title} ({grade.label_en}) is closed to external organisations",
                permission="application.core_external",
                reason="core_external",
            )
        limits = dp_budget_limits(grade, overrides)
        if "dp_query" in channels and (limits.epsilon_per_project <= 0 or Action.dp_query in deny):
            raise ValidationFailed(
                f"{where}的分级规则不允许差分隐私查询，请去掉“差分隐私查询”",
                f"{ds.title}: its grade allows no DP queries",
                field="channels",
                dataset=ds.id,
                reason="grade_policy",
            )
        if {"sandbox_job", "model_serving"} & set(channels) and (
            not rules.sandbox_job or Action.sandbox_job in deny
        ):
            raise ValidationFailed(
                f"{where}的分级规则不允许沙箱作业",
                f"{ds.title}: its grade allows no sandbox jobs",
                field="channels",
                dataset=ds.id,
                reason="grade_policy",
            )
        allowed_cols = (
            ad.columns
            if ad.columns is not None
            else ([c["name"] for c in ds.table_schema["columns"]] if ds.table_schema else None)
        )
        cols = (terms.columns or {}).get(ds.id, ad.columns)
        if cols is not None and allowed_cols is not None:
            extra = [c for c in cols if c not in allowed_cols]
            if extra:
                raise ValidationFailed(
                    f"{ds.title}：只能收窄字段，不能增加 {'、'.join(extra)}",
                    f"{ds.title}: columns may only be narrowed; not requested: {', '.join(extra)}",
                    field="columns",
                    dataset=ds.id,
                )
            if not cols:
                raise ValidationFailed(
                    f"{ds.title}：至少保留一个字段", f"{ds.title}: keep at least one column", field="columns"
                )
        eps: float | None = None
        delta: float | None = None
        if "dp_query" in channels:
            eps, delta = (terms.budgets or {}).get(ds.id, (None, None))
            eps = limits.epsilon_per_project if eps is None else float(eps)
            delta = limits.delta if delta is None else float(delta)
            if not (0 < eps <= limits.epsilon_per_project):
                raise ValidationFailed(
                    f"{ds.title}：隐私预算 ε 必须大于 0 且不超过 "
                    f"{limits.epsilon_per_project:g}（{grade.label_zh}上限）",
                    f"{ds.title}: ε must be > 0 and ≤ {limits.epsilon_per_project:g} "
                    f"(the {grade.label_en} limit)",
                    field="epsilon",
                    dataset=ds.id,
                )
            if not (0 <= delta <= limits.delta):
                raise ValidationFailed(
                    f"{ds.title}：δ 必须在 0 到 {limits.delta:g} 之间",
                    f"{ds.title}: δ must be in [0, {limits.delta:g}]",
                    field="delta",
                    dataset=ds.id,
                )
        out["datasets"][str(ds.id)] = {"columns": cols, "epsilon": eps, "delta": delta}
    if {"sandbox_job", "model_serving"} & set(channels):
        q = {**DEFAULT_QUOTA, **(terms.quota or {})}
        try:
            quota = {
                "max_cpu": float(q["max_cpu"]),
                "max_memory_mb": int(q["max_memory_mb"]),
                "max_time_s": int(q["max_time_s"]),
                "cpu_seconds": None if q.get("cpu_seconds") in (None, "") else float(q["cpu_seconds"]),
                "concurrent_jobs": int(q["concurrent_jobs"]),
                "period_days": int(q["period_days"]),
            }
        except (TypeError, ValueError):
            raise ValidationFailed(
                "算力配额必须是数字", "quota values must be numbers", field="quota"
            ) from None
        bad = [k for k, v in quota.items() if v is not None and v <= 0]
        if bad:
            raise ValidationFailed(
                f"算力配额必须为正数：{'、'.join(bad)}",
                f"quota values must be positive: {', '.join(bad)}",
                field="quota",
            )
        out["quota"] = quota
    return out


# -- 专家评审 ------------------------------------------------------------------------------------


def assign_experts(
    session: Session, principal: Principal, step_id: int, user_ids: list[int], *, now: datetime
) -> list[int]:
    """The operator assigns expert reviewers (users with role expert, not of the applicant's org)."""
    step = get_step(session, step_id)
    app = get_application(session, step.application_id)
    authorize(principal, Permission.application_precheck, target=f"application:{app.id}")
    if step.kind != "expert" or step.status != OPEN:
        raise Conflict(
            "此申请当前没有待指派的专家评审", "this application has no open expert review", reason="not_open"
        )
    if not user_ids:
        raise ValidationFailed("请至少指派一位专家", "assign at least one expert", field="experts")
    assigned = set(
        session.execute(select(ApprovalExpert.user_id).where(ApprovalExpert.step_id == step.id)).scalars()
    )
    for uid in user_ids:
        user = session.get(User, uid)
        if user is None or not user.is_active or Role.expert not in {r.role for r in user.roles}:
            raise ValidationFailed(
                f"用户 {uid} 不是评审专家", f"user {uid} is not an expert reviewer", field="experts", user=uid
            )
        if user.org_id is not None and user.org_id == app.org_id:
            raise ValidationFailed(
                f"{user.display_name} 属于申请单位，不能评审",
                f"{user.username} belongs to the applicant's organisation",
                field="experts",
                user=uid,
            )
        if uid in assigned:
            continue
        session.add(
            ApprovalExpert(
                step_id=step.id, user_id=uid, assigned_by=principal.user_id, assigned_at=now, reason=""
            )
        )
        assigned.add(uid)
    session.flush()
    _touch(session, app, now)
    audit.record(
        session,
        principal,
        "application.expert_assign",
        f"application:{app.id}",
        step=step.id,
        experts=sorted(user_ids),
    )
    notify.emit(
        session,
        "workflow.expert_assigned",
        recipients=notify.to_users(*user_ids),
        target=f"application:{app.id}",
        link="/reviews",
        actor_id=principal.user_id,
        number=app.number,
        title=app.title,
    )
    return sorted(assigned)


def expert_vote(
    session: Session, principal: Principal, step_id: int, decision: str, reason: str, *, now: datetime
) -> ApprovalStep:
    step = get_step(session, step_id)
    app = get_application(session, step.application_id)
    if decision not in ("agree", "disagree"):
        raise ValidationFailed(
            "专家意见只能是 agree 或 disagree", "decision must be agree or disagree", field="decision"
        )
    _guard(session, principal, app, "expert", approving=decision == "agree")
    if step.kind != "expert" or step.status != OPEN or app.status != ApplicationStatus.in_review:
        raise _already(step, app)
    text = _reason(decision, reason, required=decision == "disagree")
    done = session.execute(
        update(ApprovalExpert)
        .where(
            ApprovalExpert.step_id == step.id,
            ApprovalExpert.user_id == principal.user_id,
            ApprovalExpert.decision.is_(None),
        )
        .values(decision=decision, reason=text, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        mine = session.get(ApprovalExpert, (step.id, principal.user_id))
        if mine is None:
            raise PermissionDenied(
                "您未被指派评审此申请",
                "you are not assigned to review this application",
                permission=str(Permission.application_expert),
                reason="not_assigned",
                target=f"application:{app.id}",
            )
        raise Conflict("您已提交过评审意见", "you have already voted", reason="already_decided")
    _touch(session, app, now)
    votes = list(session.execute(select(ApprovalExpert).where(ApprovalExpert.step_id == step.id)).scalars())
    needed = int(step.details.get("experts_needed", 1))
    agree = sum(1 for v in votes if v.decision == "agree")
    undecided = sum(1 for v in votes if v.decision is None)
    assign_target = max(int(step.details.get("experts_assign", needed)), len(votes))
    possible = agree + undecided + max(0, assign_target - len(votes))
    audit.record(
        session,
        principal,
        "application.expert",
        f"application:{app.id}",
        decision=decision,
        reason=text,
        step=step.id,
        round=step.round,
        number=app.number,
    )
    config = config_of(session, app)
    if agree >= needed:
        summary = f"{agree} 位专家同意"
        system = Principal(user_id=None, username="system", roles=frozenset(), via="system")
        _close_step(session, step, APPROVED, system, summary, now)
        _advance(session, app, step.round, config, now, actor_id=principal.user_id)
        _tell_applicant(session, app, "expert", "agree", summary, principal)
    elif possible < needed:
        _close_step(session, step, REFUSED, principal, text, now)
        _end_round(session, app, step.round)
        states.move(session, app, ApplicationStatus.rejected, reason=text, now=now)
        _tell_applicant(session, app, "expert", "disagree", text, principal)
    return step


def experts_of(session: Session, step_id: int) -> list[ApprovalExpert]:
    return list(session.execute(select(ApprovalExpert).where(ApprovalExpert.step_id == step_id)).scalars())


# -- the approved terms (CONTRACT for agreements and authorisations) --------------------------


def approved_terms(session: Session, application_id: int) -> ApprovedTerms:
    """What was approved: the application as the security officer narrowed it.

    Raises :class:`Conflict` unless the application is approved, signing or authorised."""
    app = get_application(session, application_id)
    if app.status not in (
        ApplicationStatus.approved,
        ApplicationStatus.signing,
        ApplicationStatus.authorised,
    ):
        raise Conflict(
            f"申请 {app.number} 尚未批准，没有批准条件",
            f"application {app.number} is not approved; it has no approved terms",
            reason="not_approved",
        )
    security = session.execute(
        select(ApprovalStep)
        .where(
            ApprovalStep.application_id == app.id,
            ApprovalStep.kind == "security",
            ApprovalStep.status == APPROVED,
        )
        .order_by(ApprovalStep.round.desc())
        .limit(1)
    ).scalar_one_or_none()
    details: dict[str, Any] = dict(security.details) if security is not None else {}
    pairs = requested(session, app)
    per_ds: dict[str, Any] = details.get("datasets", {})
    datasets = []
    for ad, ds in pairs:
        d = per_ds.get(str(ds.id), {})
        cols = d.get("columns", ad.columns)
        datasets.append(
            DatasetTerms(
                dataset_id=ds.id,
                columns=tuple(cols) if cols is not None else None,
                epsilon=d.get("epsilon"),
                delta=d.get("delta"),
            )
        )
    channels = frozenset(Channel(c) for c in details.get("channels", app.channels or []))
    q = details.get("quota")
    quota = QuotaTerms(**q) if q else None
    members = [app.applicant_id] + [
        uid
        for uid in session.execute(
            select(ApplicationMember.user_id)
            .where(ApplicationMember.application_id == app.id)
            .order_by(ApplicationMember.user_id)
        ).scalars()
        if uid != app.applicant_id
    ]
    if app.starts_on is None or app.ends_on is None:
        raise Conflict(
            f"申请 {app.number} 没有期限", f"application {app.number} has no term", reason="no_term"
        )
    return ApprovedTerms(
        application_id=app.id,
        application_number=app.number,
        scenario_id=app.scenario_id,
        org_id=app.org_id,
        purpose=app.purpose,
        datasets=tuple(datasets),
        channels=channels,
        starts_on=app.starts_on,
        ends_on=app.ends_on,
        member_ids=tuple(members),
        quota=quota,
        output_rules=output_rules([d for _, d in pairs]),
        conditions=str(details.get("conditions", "")),
        renewal_of=app.renewal_of,
    )


def output_rules(datasets: list[Dataset]) -> str:
    """The output rules in words, from the strictest grade's airlock rule."""
    grade = highest_grade(datasets)
    rules = POLICY[grade]
    parts = ["结果须经出域审核（自动检查"]
    if rules.review is None:
        return "核心数据的结果不得出域；只可在域内使用经批准的代码。"
    parts[0] += f"，{rules.review.checkers} 名结果审核员" if rules.review.checkers else ""
    parts[0] += "，数据安全官复核" if rules.review.security_officer else ""
    parts[0] += "）方可带出"
    if rules.sdc is not None:
        parts.append(f"单元格至少 {rules.sdc.min_cell_count} 个统计对象")
    if rules.sandbox_approved_code_only:
        parts.append("沙箱只运行经批准的代码")
    parts.append("不得下载明细数据" if not rules.download_rows else "可下载明细数据")
    return "；".join(parts) + "。"
