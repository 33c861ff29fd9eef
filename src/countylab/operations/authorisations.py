"""Authorisations (授权备案): what takes effect when both parties have signed, and how it ends.

``take_effect`` runs inside the transaction of the second signature: it creates the project (or,
for a renewal, updates the existing one), sets its members, grants exactly the approved datasets,
columns and channels, the privacy budgets and the compute quota, and moves the application to
``authorised``.  Anything it refuses (a member without a current accreditation, 核心 data) rolls
the signature back with it.  The steward suspends (reversible) or revokes (final) an
authorisation at once; the expiry sweep (:mod:`countylab.operations.expiry`) ends it on its date.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit, notify
from countylab.errors import Conflict, NotFound, ValidationFailed
from countylab.identity import projects as prj
from countylab.identity.access import SYSTEM, Principal, authorize
from countylab.identity.roles import Permission, Role
from countylab.operations import accreditation
from countylab.operations import agreement_terms as at
from countylab.operations.enforcement import beijing_today
from countylab.operations.states import ApplicationStatus, move
from countylab.operations.terms import ApprovedTerms
from countylab.storage.authorisation_models import Agreement, Authorisation, AuthorisationEvent, GrantTerms
from countylab.storage.models import Dataset, Grant, Org, Project, ProjectMember, utcnow
from countylab.storage.operations_models import Application, Scenario

STATUSES = ("active", "suspended", "revoked", "expired")
_VERB_ZH = {"suspended": "暂停", "resumed": "恢复", "revoked": "撤销"}
STATUS_ZH = {"active": "生效中", "suspended": "已暂停", "revoked": "已撤销", "expired": "已到期"}
#: a callable that stops a project's queued and running jobs (the compute center's cancel path)
StopJobs = Callable[[Session, int], int]


def _slug(number: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", number.lower()).strip("-")[:60] or "project"


def take_effect(session: Session, actor: Principal, agreement: Agreement, *, now: datetime) -> Authorisation:
    terms = at.from_json(agreement.terms)
    app = session.get(Application, terms.application_id)
    assert app is not None
    today = beijing_today(now)
    accreditation.require_current(session, terms.member_ids, today)
    if terms.ends_on < today:
        raise ValidationFailed(
            f"协议约定的授权期限已于 {terms.ends_on} 结束，不能生效；请重新起草协议",
            f"The agreed term ended on {terms.ends_on}: redraft the agreement",
            reason="term_over",
        )
    existing = _renewed(session, terms)
    if existing is None:
        project = _new_project(session, app, terms)
        auth = Authorisation(
            application_id=app.id,
            latest_application_id=app.id,
            agreement_id=agreement.id,
            project_id=project.id,
            org_id=terms.org_id,
            scenario_id=terms.scenario_id,
            purpose=terms.purpose,
            channels=sorted(c.value for c in terms.channels),
            starts_on=terms.starts_on,
            ends_on=terms.ends_on,
            status="active",
            status_reason="",
            status_at=now,
        )
        session.add(auth)
        session.flush()
        kind = "granted"
    else:
        auth = existing
        found = session.get(Project, auth.project_id)
        assert found is not None
        project = found
        if auth.status == "revoked":
            raise Conflict("原授权已撤销，不能续期", "The authorisation was revoked: it cannot be renewed")
        auth.latest_application_id, auth.agreement_id = app.id, agreement.id
        auth.channels = sorted(c.value for c in terms.channels)
        auth.ends_on = max(auth.ends_on, terms.ends_on)
        auth.purpose, auth.status, auth.status_reason, auth.status_at = terms.purpose, "active", "", now
        kind = "extended"
    _apply(session, actor, auth, project, terms)
    app.project_id = project.id
    move(session, app, ApplicationStatus.authorised, now=now)
    _event(session, auth, kind, f"协议 {agreement.number}", actor, now)
    audit.record(
        session,
        actor,
        "authorisation.grant" if kind == "granted" else "authorisation.extend",
        f"project:{project.id}",
        authorisation_id=auth.id,
        application_id=app.id,
        agreement=agreement.number,
        sha256=agreement.sha256,
        datasets=[d.dataset_id for d in terms.datasets],
        channels=auth.channels,
        ends_on=auth.ends_on.isoformat(),
    )
    notify.emit(
        session,
        "authorisation.granted",
        recipients=notify.to_users(*terms.member_ids) | notify.to_roles(Role.operator.value),
        target=f"project:{project.id}",
        actor_id=actor.user_id,
        number=app.number,
        project=project.title,
        ends_on=auth.ends_on.isoformat(),
    )
    return auth


def _renewed(session: Session, terms: ApprovedTerms) -> Authorisation | None:
    if terms.renewal_of is None:
        return None
    previous = session.get(Application, terms.renewal_of)
    if previous is None or previous.project_id is None:
        raise Conflict(
            "续期所依据的原申请没有已授权的项目", "The renewed application has no authorised project"
        )
    return session.execute(
        select(Authorisation).where(Authorisation.project_id == previous.project_id)
    ).scalar_one_or_none()


def _new_project(session: Session, app: Application, terms: ApprovedTerms) -> Project:
    slug = _slug(app.number)
    if session.execute(select(Project.id).where(Project.slug == slug)).first() is not None:
        slug = f"{slug}-{app.id}"
    project = prj.create_project(
        session,
        SYSTEM,
        slug=slug,
        title=app.title,
        description=f"用数申请 {app.number} 授权项目",
        org_id=app.org_id,
    )
    project.created_by = terms.member_ids[0] if terms.member_ids else app.applicant_id
    return project


def _apply(
    session: Session, actor: Principal, auth: Authorisation, project: Project, terms: ApprovedTerms
) -> None:
    """Members, grants (exactly the approved datasets, columns and channels), budgets, quota."""
    from countylab.jobs.quotas import set_quota
    from countylab.jobs.validate import Quota
    from countylab.privacy import budget

    wanted = list(dict.fromkeys(terms.member_ids))
    for m in list(project.members):
        if m.user_id not in wanted:
            project.members.remove(m)
    have = {m.user_id: m for m in project.members}
    for i, uid in enumerate(wanted):
        role = "owner" if i == 0 else "member"
        if uid in have:
            have[uid].role = role
        else:
            project.members.append(ProjectMember(user_id=uid, role=role))
    session.flush()
    channels = sorted(c.value for c in terms.channels)
    approved = {d.dataset_id: d for d in terms.datasets}
    grants = {g.dataset_id: g for g in prj.project_grants(session, project.id)}
    for dataset_id, grant in grants.items():  # a renewal that drops a dataset ends its grant
        if dataset_id not in approved:
            session.delete(grant)
    session.flush()
    for d in terms.datasets:
        ds = session.get(Dataset, d.dataset_id)
        if ds is None:
            raise NotFound(f"数据集 {d.dataset_id} 不存在", f"Dataset {d.dataset_id} not found")
        if ds.grade == "core":
            raise ValidationFailed(
                f"核心数据“{ds.title}”不得授权", f"Core data '{ds.name}' is never granted", dataset_id=ds.id
            )
        existing_grant = grants.get(d.dataset_id)
        if existing_grant is not None:
            grant = existing_grant
        else:
            grant = Grant(
                project_id=project.id,
                dataset_id=ds.id,
                granted_by=actor.user_id,
                note=terms.application_number,
            )
            session.add(grant)
            session.flush()
        row = session.get(GrantTerms, grant.id) or GrantTerms(grant_id=grant.id)
        row.kind, row.channels, row.authorisation_id = "authorisation", channels, auth.id
        row.columns = list(d.columns) if d.columns is not None else None
        row.ends_on, row.reason = terms.ends_on, terms.application_number
        row.project_id, row.dataset_id, row.granted_by = project.id, ds.id, actor.user_id
        session.add(row)
        session.flush()
        if d.epsilon is not None or d.delta is not None:
            budget.set_limit(session, SYSTEM, project.id, ds.id, epsilon=d.epsilon, delta=d.delta)
    if terms.quota is not None:
        q = terms.quota
        set_quota(
            session,
            project.id,
            Quota(
                max_cpu=q.max_cpu,
                max_memory_mb=q.max_memory_mb,
                max_time_s=q.max_time_s,
                max_gpu=q.max_gpu,
                cpu_seconds=q.cpu_seconds,
                gpu_seconds=q.gpu_seconds,
                concurrent_jobs=q.concurrent_jobs,
                period_days=q.period_days,
            ),
            by=actor.user_id,
        )


def _event(
    session: Session, auth: Authorisation, kind: str, reason: str, actor: Principal, now: datetime
) -> None:
    session.add(
        AuthorisationEvent(authorisation_id=auth.id, kind=kind, reason=reason, actor_id=actor.user_id, at=now)
    )
    session.flush()


# -- reading ---------------------------------------------------------------------------------------
def get(session: Session, authorisation_id: int, *, lock: bool = False) -> Authorisation:
    q = select(Authorisation).where(Authorisation.id == authorisation_id)
    auth = session.execute(q.with_for_update() if lock else q).scalar_one_or_none()
    if auth is None:
        raise NotFound(f"授权 {authorisation_id} 不存在", f"Authorisation {authorisation_id} not found")
    return auth


def for_project(session: Session, project_id: int) -> Authorisation | None:
    return session.execute(
        select(Authorisation).where(Authorisation.project_id == project_id)
    ).scalar_one_or_none()


def require_list(actor: Principal) -> None:
    if actor.is_system or actor.roles & {Role.steward, Role.operator, Role.admin, Role.leader}:
        return
    authorize(actor, Permission.authorisation_manage)


def list_all(session: Session, actor: Principal, *, status: str | None = None) -> list[dict[str, Any]]:
    require_list(actor)
    q = select(Authorisation).order_by(Authorisation.ends_on, Authorisation.id)
    if status:
        q = q.where(Authorisation.status == status)
    return [view(session, a) for a in session.execute(q).scalars()]


def view(session: Session, auth: Authorisation) -> dict[str, Any]:
    app = session.get(Application, auth.latest_application_id)
    project = session.get(Project, auth.project_id)
    org = session.get(Org, auth.org_id)
    scenario = session.get(Scenario, auth.scenario_id)
    agreement = session.get(Agreement, auth.agreement_id)
    grants = session.execute(
        select(GrantTerms, Dataset)
        .join(Dataset, Dataset.id == GrantTerms.dataset_id)
        .where(GrantTerms.authorisation_id == auth.id)
        .order_by(Dataset.name)
    ).all()
    events = session.execute(
        select(AuthorisationEvent)
        .where(AuthorisationEvent.authorisation_id == auth.id)
        .order_by(AuthorisationEvent.at, AuthorisationEvent.id)
    ).scalars()
    return {
        "id": auth.id,
        "status": auth.status,
        "status_label": STATUS_ZH[auth.status],
        "status_reason": auth.status_reason,
        "application_id": auth.latest_application_id,
        "application_number": app.number if app else "",
        "agreement_id": auth.agreement_id,
        "agreement_number": agreement.number if agreement else "",
        "project_id": auth.project_id,
        "project_slug": project.slug if project else "",
        "project_title": project.title if project else "",
        "org_id": auth.org_id,
        "org_name": org.name if org else "",
        "scenario_id": auth.scenario_id,
        "scenario_title": scenario.title if scenario else "",
        "purpose": auth.purpose,
        "channels": list(auth.channels),
        "starts_on": auth.starts_on.isoformat(),
        "ends_on": auth.ends_on.isoformat(),
        "datasets": [
            {
                "dataset_id": ds.id,
                "name": ds.name,
                "title": ds.title,
                "columns": gt.columns,
                "channels": gt.channels,
            }
            for gt, ds in grants
        ],
        "events": [
            {"kind": e.kind, "reason": e.reason, "actor_id": e.actor_id, "at": e.at.isoformat()}
            for e in events
        ],
    }


# -- the steward's actions -------------------------------------------------------------------------
def _change(
    session: Session,
    actor: Principal,
    authorisation_id: int,
    *,
    kind: str,
    to: str,
    allowed_from: tuple[str, ...],
    reason: str,
    now: datetime | None,
    stop_jobs: StopJobs | None,
) -> Authorisation:
    target = f"authorisation:{authorisation_id}"
    authorize(actor, Permission.authorisation_manage, target=target)
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("请写明理由", "A reason is required", field="reason")
    if len(reason) > 2000:
        raise ValidationFailed("理由最多 2000 字", "Reason: at most 2000 characters", field="reason")
    auth = get(session, authorisation_id, lock=True)
    if auth.status not in allowed_from:
        raise Conflict(
            f"授权当前为“{STATUS_ZH[auth.status]}”，不能{_VERB_ZH[kind]}",
            f"The authorisation is {auth.status}: it cannot be {kind}",
            reason="status",
        )
    when = now or utcnow()
    if kind == "resumed" and auth.ends_on < beijing_today(when):
        raise Conflict(
            f"授权已于 {auth.ends_on} 到期，不能恢复；请提出续期申请",
            f"The authorisation ended on {auth.ends_on}: it cannot be resumed (apply for a renewal)",
            reason="expired",
        )
    auth.status, auth.status_reason, auth.status_at = to, reason, when
    _event(session, auth, kind, reason, actor, when)
    stopped = stop_jobs(session, auth.project_id) if stop_jobs is not None and to != "active" else 0
    audit.record(
        session,
        actor,
        f"authorisation.{ {'suspended': 'suspend', 'resumed': 'resume', 'revoked': 'revoke'}[kind] }",
        target,
        project_id=auth.project_id,
        reason=reason,
        jobs_stopped=stopped,
    )
    app = session.get(Application, auth.latest_application_id)
    notify.emit(
        session,
        f"authorisation.{kind}",
        recipients=notify.to_project(auth.project_id) | notify.to_roles(Role.operator.value),
        target=f"project:{auth.project_id}",
        actor_id=actor.user_id,
        number=app.number if app else "",
        reason=reason,
    )
    return auth


def suspend(
    session: Session,
    actor: Principal,
    authorisation_id: int,
    *,
    reason: str,
    now: datetime | None = None,
    stop_jobs: StopJobs | None = None,
) -> Authorisation:
    return _change(
        session,
        actor,
        authorisation_id,
        kind="suspended",
        to="suspended",
        allowed_from=("active",),
        reason=reason,
        now=now,
        stop_jobs=stop_jobs,
    )


def resume(
    session: Session, actor: Principal, authorisation_id: int, *, reason: str, now: datetime | None = None
) -> Authorisation:
    return _change(
        session,
        actor,
        authorisation_id,
        kind="resumed",
        to="active",
        allowed_from=("suspended",),
        reason=reason,
        now=now,
        stop_jobs=None,
    )


def revoke(
    session: Session,
    actor: Principal,
    authorisation_id: int,
    *,
    reason: str,
    now: datetime | None = None,
    stop_jobs: StopJobs | None = None,
) -> Authorisation:
    return _change(
        session,
        actor,
        authorisation_id,
        kind="revoked",
        to="revoked",
        allowed_from=("active", "suspended"),
        reason=reason,
        now=now,
        stop_jobs=stop_jobs,
    )
