"""Data-use applications (用数申请), from the applicant's side.

An organisation's member (``application.submit``) drafts an application to a scenario: purpose
type, datasets and columns (only those the scenario offers), channels, team, term, expected
outputs, the security commitments (承诺书) and PDF attachments (:mod:`.attachments`).  It moves
draft → submitted (every field complete, every commitment ticked, the scenario open, the team
accredited) → returned by the operator (engineer B, through :func:`states.move`) → resubmitted, or
withdrawn.  Editing happens only in :data:`states.EDITABLE`.  Every change is audited with the
application's number.

Rules that hold whatever the entry point (each raises a bilingual error naming the field,
dataset or person, and the transaction rolls back whole):

* a dataset the scenario does not offer, or a column it does not offer, is refused;
* 核心 (core) data is never for an external organisation (enterprise or research institute);
* a term is at most two years and does not start in the past;
* a proposed scenario must be accepted before an application to it is submitted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from countylab import notify
from countylab.audit import log as audit
from countylab.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from countylab.identity.access import Principal, authorize, has_permission
from countylab.identity.roles import Permission, Role
from countylab.operations import accreditation
from countylab.operations import scenarios as scenario_service
from countylab.operations.states import EDITABLE, ApplicationStatus, ScenarioStatus, move
from countylab.operations.terms import Channel
from countylab.storage.models import Dataset, Org, User, utcnow
from countylab.storage.operations_models import (
    Application,
    ApplicationDataset,
    ApplicationMember,
    Scenario,
)

#: 承诺书: the clauses an applicant must tick, every one (code -> (中文, English))
COMMITMENTS: dict[str, tuple[str, str]] = {
    "purpose_only": (
        "仅将数据用于本申请所述场景和目的",
        "Use the data only for the scenario and purpose stated",
    ),
    "no_reidentify": (
        "不以任何方式尝试识别个人、家庭或单位",
        "Never attempt to identify a person, household or organisation",
    ),
    "in_lab_only": (
        "原始数据不出实验室，只在沙箱和查询网关中使用",
        "Raw data never leaves the lab; use it only in the sandbox and the query gateway",
    ),
    "outputs_reviewed": ("一切输出经出域审核后方可使用", "Every output is used only after output checking"),
    "accredited_team": (
        "团队成员均已完成数据安全培训并保持合格",
        "Every team member has passed and keeps the data-security training",
    ),
    "report_incidents": (
        "发现安全事件或数据泄露立即报告运营方",
        "Report any security incident or leak to the operator at once",
    ),
    "end_of_term": (
        "授权期满后停止使用，并配合审计",
        "Stop using the data when the term ends and accept audits",
    ),
}

PURPOSES: dict[str, tuple[str, str]] = {
    "public_good": ("公共治理/公益", "Public governance / public good"),
    "industry": ("产业/行业", "Industry / business"),
}

#: the longest term an application may ask for
MAX_TERM_DAYS = 2 * 366
#: organisations outside the government domain: never 核心 data
EXTERNAL_KINDS = frozenset({"enterprise", "research"})
#: roles that read every application (oversight and the workflow's deciders)
READ_ALL_ROLES = frozenset({Role.operator, Role.steward, Role.leader, Role.admin})

#: further readers, for the approval workflow (assigned experts): ``(session, actor, app) -> bool``
EXTRA_READERS: list[Callable[[Session, Principal, Application], bool]] = []


@dataclass(frozen=True)
class RequestedDataset:
    dataset_id: int
    columns: tuple[str, ...] | None = None  # None: every column the scenario offers


@dataclass(frozen=True)
class ApplicationInput:
    scenario_id: int
    title: str
    purpose: str = ""
    datasets: tuple[RequestedDataset, ...] = ()
    channels: tuple[str, ...] = ()
    member_ids: tuple[int, ...] = ()  # besides the applicant
    starts_on: date | None = None
    ends_on: date | None = None
    expected_outputs: str = ""
    commitments: tuple[str, ...] = ()  # the codes of COMMITMENTS ticked
    extra: dict[str, str] = field(default_factory=dict)


def label(table: dict[str, tuple[str, str]], code: str, lang: str = "zh-CN") -> str:
    pair = table.get(code)
    return (pair[1] if lang.startswith("en") else pair[0]) if pair else code


# -- reading ------------------------------------------------------------------------------------


def dataset_ids(session: Session, application_id: int) -> list[int]:
    return list(
        session.execute(
            select(ApplicationDataset.dataset_id).where(ApplicationDataset.application_id == application_id)
        ).scalars()
    )


def member_ids(session: Session, application_id: int) -> list[int]:
    rows = session.execute(
        select(ApplicationMember.user_id, ApplicationMember.role).where(
            ApplicationMember.application_id == application_id
        )
    ).all()
    return [uid for uid, role in sorted(rows, key=lambda r: (r[1] != "owner", r[0]))]


def can_read(session: Session, actor: Principal, app: Application) -> bool:
    """Its team, its organisation's applicants, the operator, the steward, leaders, the admin,
    the departments owning its datasets, and readers the workflow adds (assigned experts)."""
    if actor.is_system or actor.roles & READ_ALL_ROLES:
        return True
    if actor.user_id is not None and actor.user_id in member_ids(session, app.id):
        return True
    if Role.developer in actor.roles and actor.org_id == app.org_id:
        return True
    if actor.org_id is not None and Role.provider in actor.roles and app.status != ApplicationStatus.draft:
        owners = session.execute(
            select(Dataset.org_id).where(Dataset.id.in_(dataset_ids(session, app.id)))
        ).scalars()
        if actor.org_id in set(owners):
            return True
    return any(reader(session, actor, app) for reader in EXTRA_READERS)


def get(session: Session, actor: Principal, application_id: int) -> Application:
    """The application, or NotFound; PermissionDenied (the entry point audits it) for others."""
    app = session.get(Application, application_id)
    if app is None:
        raise NotFound(f"用数申请 #{application_id} 不存在", f"Application #{application_id} not found")
    if not can_read(session, actor, app):
        raise PermissionDenied(
            f"无权查看用数申请 {app.number}",
            f"You may not read application {app.number}",
            permission=Permission.application_submit.value,
            target=f"application:{app.id}",
            reason="organisation",
        )
    return app


def list_for(
    session: Session, actor: Principal, *, status: str = "", mine: bool = False
) -> list[Application]:
    """The applications ``actor`` may read, newest change first."""
    stmt = select(Application).order_by(Application.updated_at.desc(), Application.id.desc())
    if status:
        stmt = stmt.where(Application.status == status)
    rows = [a for a in session.execute(stmt).scalars() if can_read(session, actor, a)]
    if mine and actor.user_id is not None:
        rows = [a for a in rows if actor.user_id in member_ids(session, a.id)]
    return rows


# -- checks -------------------------------------------------------------------------------------


def _scenario(session: Session, actor: Principal, scenario_id: int) -> Scenario:
    sc = scenario_service.get(session, actor, scenario_id)
    if sc.status == ScenarioStatus.rejected:
        raise ValidationFailed(
            f"场景“{sc.title}”未被受理，不能申请", f"Scenario {sc.title!r} was declined", field="scenario_id"
        )
    return sc


def _check_datasets(
    session: Session,
    sc: Scenario,
    org: Org,
    wanted: tuple[RequestedDataset, ...],
    *,
    version: int | None = None,
) -> list[tuple[RequestedDataset, Dataset]]:
    """Check ``wanted`` against the scenario's current offer, or against the offer of the
    scenario ``version`` an application was first submitted under (an offer edited later does
    not invalidate it, :mod:`.scenario_versions`)."""
    from countylab.operations.scenario_versions import offer_at

    offers = {offer.dataset_id: (offer, ds) for offer, ds in offer_at(session, sc.id, version)}
    out: list[tuple[RequestedDataset, Dataset]] = []
    seen: set[int] = set()
    for req in wanted:
        if req.dataset_id not in offers:
            ds = session.get(Dataset, req.dataset_id)
            name = ds.title if ds else f"#{req.dataset_id}"
            raise ValidationFailed(
                f"场景“{sc.title}”没有提供数据集“{name}”",
                f"Scenario {sc.title!r} does not offer dataset {name!r}",
                field="datasets",
                dataset_id=req.dataset_id,
            )
        if req.dataset_id in seen:
            continue
        seen.add(req.dataset_id)
        offer, ds = offers[req.dataset_id]
        if ds.grade == "core" and org.kind in EXTERNAL_KINDS:
            raise ValidationFailed(
                f"数据集“{ds.title}”为核心数据，只能在域内使用，不向外部单位（{org.name}）授权",
                f"Dataset {ds.title!r} is core data, for in-domain use only; "
                f"it is never granted to an external organisation ({org.name})",
                field="datasets",
                dataset_id=ds.id,
            )
        if req.columns is not None:
            allowed = (
                set(offer.columns)
                if offer.columns is not None
                else {str(c["name"]) for c in (ds.table_schema or {}).get("columns", [])}
            )
            bad = [c for c in req.columns if c not in allowed]
            if bad or not req.columns:
                raise ValidationFailed(
                    f"场景没有提供数据集“{ds.title}”的列：{'、'.join(bad) or '（空）'}",
                    f"The scenario does not offer column {', '.join(bad) or '(none)'} "
                    f"of dataset {ds.title!r}",
                    field="columns",
                    dataset_id=ds.id,
                    column=bad[0] if bad else "",
                )
        out.append((req, ds))
    return out


def _check_term(starts_on: date | None, ends_on: date | None, today: date) -> None:
    if starts_on is None or ends_on is None:
        return
    if starts_on < today:
        raise ValidationFailed(
            f"授权期限开始日期 {starts_on.isoformat()} 已过去",
            f"The term starts on {starts_on.isoformat()}, in the past",
            field="starts_on",
        )
    if ends_on <= starts_on:
        raise ValidationFailed(
            "授权期限结束日期必须晚于开始日期", "The term must end after it starts", field="ends_on"
        )
    if (ends_on - starts_on).days > MAX_TERM_DAYS:
        raise ValidationFailed(
            f"授权期限最长两年（{starts_on.isoformat()} 至 {ends_on.isoformat()} 超过了）",
            f"The term is at most two years ({starts_on.isoformat()} to {ends_on.isoformat()} is longer)",
            field="ends_on",
        )


def _check_channels(channels: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for c in channels:
        try:
            out.append(Channel(c).value)
        except ValueError:
            raise ValidationFailed(
                f"使用方式“{c}”无效",
                f"Unknown channel {c!r} (dp_query, sandbox_job, model_serving)",
                field="channels",
            ) from None
    return sorted(set(out))


def _check_members(session: Session, ids: tuple[int, ...]) -> list[User]:
    users: list[User] = []
    for uid in dict.fromkeys(ids):
        user = session.get(User, uid)
        if user is None or not user.is_active:
            raise ValidationFailed(
                f"团队成员 #{uid} 不存在或已停用",
                f"Team member #{uid} does not exist or is inactive",
                field="member_ids",
                user_id=uid,
            )
        users.append(user)
    return users


def _check_commitments(codes: tuple[str, ...]) -> list[str]:
    bad = [c for c in codes if c not in COMMITMENTS]
    if bad:
        raise ValidationFailed(
            f"承诺事项“{bad[0]}”不在承诺书中",
            f"Commitment {bad[0]!r} is not in the list",
            field="commitments",
        )
    return [c for c in COMMITMENTS if c in codes]


# -- numbering ----------------------------------------------------------------------------------


def _next_number(session: Session, year: int) -> str:
    prefix = f"SQ-{year}-"
    last = session.execute(
        select(func.max(Application.number)).where(Application.number.like(f"{prefix}%"))
    ).scalar_one_or_none()
    n = int(last[len(prefix) :]) + 1 if last else 1
    return f"{prefix}{n:04d}"


def _insert_numbered(session: Session, app: Application, year: int) -> None:
    """Give ``app`` the next number of ``year``: the unique constraint decides a race between
    two servers, and the loser takes the next one (a savepoint keeps the rest of the work)."""
    for _ in range(50):
        app.number = _next_number(session, year)
        try:
            with session.begin_nested():
                session.add(app)
                session.flush()
            return
        except IntegrityError:
            continue
    raise Conflict("申请编号分配繁忙，请重试", "Could not allocate an application number; try again")


# -- writing ------------------------------------------------------------------------------------


def _own_org(session: Session, actor: Principal) -> Org:
    org = session.get(Org, actor.org_id) if actor.org_id is not None else None
    if org is None:
        raise ValidationFailed(
            "您的账号不属于任何单位，不能提交用数申请",
            "Your account belongs to no organisation; applications are filed by an organisation",
            field="org_id",
        )
    return org


def _apply_fields(
    session: Session,
    actor: Principal,
    app: Application,
    data: ApplicationInput,
    sc: Scenario,
    org: Org,
    today: date,
) -> None:
    if not data.title.strip():
        raise ValidationFailed("请填写申请名称", "The application needs a title", field="title")
    if data.purpose and data.purpose not in PURPOSES:
        raise ValidationFailed(
            f"用途类型“{data.purpose}”无效（public_good 或 industry）",
            f"Purpose {data.purpose!r} is invalid (public_good or industry)",
            field="purpose",
        )
    held_to = app.scenario_version if app.scenario_id == sc.id else None  # see _check_submittable
    checked = _check_datasets(session, sc, org, data.datasets, version=held_to)
    channels = _check_channels(data.channels)
    _check_term(data.starts_on, data.ends_on, today)
    members = _check_members(session, data.member_ids)
    ticked = _check_commitments(data.commitments)
    app.scenario_id = sc.id
    app.title = data.title.strip()[:200]
    app.purpose = data.purpose
    app.channels = channels
    app.starts_on = data.starts_on
    app.ends_on = data.ends_on
    app.expected_outputs = data.expected_outputs.strip()
    before = dict(app.commitments or {})
    if sorted(before.get("items", [])) != sorted(ticked):
        app.commitments = {
            "items": ticked,
            "by": actor.user_id,
            "by_name": actor.username,
            "at": utcnow().isoformat(),
        }
    app.updated_at = utcnow()
    session.flush()
    session.execute(delete(ApplicationDataset).where(ApplicationDataset.application_id == app.id))
    session.add_all(
        ApplicationDataset(
            application_id=app.id,
            dataset_id=ds.id,
            columns=list(req.columns) if req.columns is not None else None,
        )
        for req, ds in checked
    )
    session.execute(delete(ApplicationMember).where(ApplicationMember.application_id == app.id))
    session.add(ApplicationMember(application_id=app.id, user_id=app.applicant_id, role="owner"))
    session.add_all(
        ApplicationMember(application_id=app.id, user_id=u.id, role="member")
        for u in members
        if u.id != app.applicant_id
    )
    session.flush()


def create(
    session: Session, actor: Principal, data: ApplicationInput, *, today: date, renewal_of: int | None = None
) -> Application:
    """A new draft with its number (SQ-YYYY-NNNN)."""
    authorize(actor, Permission.application_submit, target="application:new")
    if actor.user_id is None:
        raise ValidationFailed("系统账号不能提交用数申请", "The system account cannot apply")
    org = _own_org(session, actor)
    sc = _scenario(session, actor, data.scenario_id)
    now = utcnow()
    app = Application(
        scenario_id=sc.id,
        org_id=org.id,
        applicant_id=actor.user_id,
        title=data.title.strip()[:200] or "?",
        purpose=data.purpose,
        channels=[],
        commitments={},
        status=ApplicationStatus.draft.value,
        status_reason="",
        renewal_of=renewal_of,
        version=1,
        created_at=now,
        updated_at=now,
    )
    _insert_numbered(session, app, today.year)
    _apply_fields(session, actor, app, data, sc, org, today)
    audit.record(
        session,
        actor,
        "application.create",
        f"application:{app.id}",
        number=app.number,
        scenario_id=sc.id,
        datasets=[d.dataset_id for d in data.datasets],
        renewal_of=renewal_of,
    )
    return app


def _editable(session: Session, actor: Principal, application_id: int) -> Application:
    authorize(actor, Permission.application_submit, target=f"application:{application_id}")
    app = get(session, actor, application_id)
    if actor.user_id not in member_ids(session, app.id) or (
        actor.user_id != app.applicant_id and app.org_id != actor.org_id
    ):
        raise PermissionDenied(
            f"只有申请团队可以修改用数申请 {app.number}",
            f"Only the applicant's team may change application {app.number}",
            permission=Permission.application_submit.value,
            target=f"application:{app.id}",
            reason="project_member",
        )
    return app


def _require_editable(app: Application) -> None:
    if app.status not in EDITABLE:
        from countylab.operations.states import _STATUS_ZH

        raise Conflict(
            f"申请 {app.number} 当前为“{_STATUS_ZH[app.status]}”，不能修改（只有草稿和已退回的申请可以修改）",
            f"Application {app.number} is {app.status}; only drafts and returned applications can be edited",
            field="status",
        )


def update(
    session: Session, actor: Principal, application_id: int, data: ApplicationInput, *, today: date
) -> Application:
    """Replace the draft's fields (only in ``EDITABLE``); bumps its version."""
    app = _editable(session, actor, application_id)
    _require_editable(app)
    org = session.get(Org, app.org_id)
    assert org is not None
    sc = _scenario(session, actor, data.scenario_id)
    _apply_fields(session, actor, app, data, sc, org, today)
    app.version += 1
    session.flush()
    audit.record(
        session,
        actor,
        "application.update",
        f"application:{app.id}",
        number=app.number,
        scenario_id=sc.id,
        datasets=[d.dataset_id for d in data.datasets],
        commitments=list(app.commitments.get("items", [])),
    )
    return app


def problems(session: Session, app: Application, today: date, lang: str = "zh-CN") -> list[str]:
    """What still stops a submission, in words (the page lists them; :func:`submit` refuses on
    the first)."""
    out: list[str] = []
    try:
        _check_submittable(session, app, today)
    except (ValidationFailed, PermissionDenied, Conflict) as exc:
        out.append(exc.message(lang))
    return out


def _check_submittable(session: Session, app: Application, today: date) -> None:
    sc = session.get(Scenario, app.scenario_id)
    assert sc is not None
    if sc.status == ScenarioStatus.proposed:
        raise ValidationFailed(
            f"自拟场景“{sc.title}”尚未被运营方受理，受理后才能提交",
            f"The proposed scenario {sc.title!r} has not been accepted by the operator yet",
            field="scenario_id",
        )
    renewing = app.renewal_of is not None and sc.status in (
        ScenarioStatus.collecting,
        ScenarioStatus.matched,
        ScenarioStatus.in_progress,
    )
    if not renewing and not scenario_service.is_open(sc, today):
        raise ValidationFailed(
            f"场景“{sc.title}”不在征集期内（{scenario_service.status_name(sc.status)}，"
            f"截止 {sc.apply_until.isoformat() if sc.apply_until else '—'}）",
            f"Scenario {sc.title!r} is not open for applications ({sc.status}, "
            f"until {sc.apply_until.isoformat() if sc.apply_until else '—'})",
            field="scenario_id",
        )
    if app.purpose not in PURPOSES:
        raise ValidationFailed("请选择用途类型", "Choose the purpose type", field="purpose")
    wanted = session.execute(
        select(ApplicationDataset).where(ApplicationDataset.application_id == app.id)
    ).scalars()
    reqs = tuple(RequestedDataset(r.dataset_id, tuple(r.columns) if r.columns else None) for r in wanted)
    if not reqs:
        raise ValidationFailed("请至少选择一个数据集", "Choose at least one dataset", field="datasets")
    org = session.get(Org, app.org_id)
    assert org is not None
    # the scenario's offer may have changed since: a draft meets the current offer, a resubmission
    # the offer it was first submitted under
    _check_datasets(session, sc, org, reqs, version=app.scenario_version)
    if not app.channels:
        raise ValidationFailed("请选择使用方式", "Choose at least one channel", field="channels")
    if app.starts_on is None or app.ends_on is None:
        raise ValidationFailed("请填写授权期限", "Give the term (start and end)", field="starts_on")
    _check_term(app.starts_on, app.ends_on, today)
    if not app.expected_outputs.strip():
        raise ValidationFailed("请填写预期成果", "Describe the expected outputs", field="expected_outputs")
    ticked = set((app.commitments or {}).get("items", []))
    missing = [c for c in COMMITMENTS if c not in ticked]
    if missing:
        raise ValidationFailed(
            f"承诺书尚有 {len(missing)} 项未勾选：{'；'.join(COMMITMENTS[c][0] for c in missing)}",
            f"{len(missing)} commitments are not ticked: {'; '.join(COMMITMENTS[c][1] for c in missing)}",
            field="commitments",
            missing=missing,
        )
    accreditation.require_current(session, member_ids(session, app.id), today)


def submit(session: Session, actor: Principal, application_id: int, *, today: date) -> Application:
    """draft → submitted, or returned → submitted (resubmission); refused with the first
    problem found (:func:`problems`)."""
    app = _editable(session, actor, application_id)
    _require_editable(app)
    resubmit = app.status == ApplicationStatus.returned
    _check_submittable(session, app, today)
    move(session, app, ApplicationStatus.submitted)
    app.submitted_at = utcnow()
    if app.scenario_version is None:  # the offer this application is held to from now on
        from countylab.operations.scenario_versions import current_version

        app.scenario_version = current_version(session, app.scenario_id)
    session.flush()
    audit.record(
        session,
        actor,
        "application.resubmit" if resubmit else "application.submit",
        f"application:{app.id}",
        number=app.number,
        version=app.version,
    )
    notify.emit(
        session,
        "application.resubmitted" if resubmit else "application.submitted",
        recipients=notify.to_roles(Role.operator),
        target=f"application:{app.id}",
        link=f"/applications/{app.id}",
        actor_id=actor.user_id,
        number=app.number,
        title=app.title,
    )
    return app


def withdraw(session: Session, actor: Principal, application_id: int, reason: str = "") -> Application:
    app = _editable(session, actor, application_id)
    move(session, app, ApplicationStatus.withdrawn, reason=reason.strip()[:2000] or "申请人撤回")
    audit.record(
        session, actor, "application.withdraw", f"application:{app.id}", number=app.number, reason=reason
    )
    return app


#: states in which a renewal is still on its way (a second one is refused meanwhile)
_RENEWAL_OPEN = frozenset(
    {
        ApplicationStatus.draft,
        ApplicationStatus.submitted,
        ApplicationStatus.returned,
        ApplicationStatus.in_review,
        ApplicationStatus.publicising,
        ApplicationStatus.approved,
        ApplicationStatus.signing,
    }
)


def _renewal_chain(session: Session, app: Application) -> list[Application]:
    """Every application of ``app``'s authorisation: the first one and its renewals (and theirs)."""
    root = app
    while root.renewal_of is not None:
        parent = session.get(Application, root.renewal_of)
        if parent is None:
            break
        root = parent
    chain, todo = [root], [root.id]
    while todo:
        children = list(
            session.execute(select(Application).where(Application.renewal_of.in_(todo))).scalars()
        )
        chain.extend(children)
        todo = [c.id for c in children]
    return chain


def _renewal_refusal(session: Session, actor: Principal, old: Application) -> Exception | None:
    """Why ``actor`` may not renew ``old`` now (None: they may).  Only the applicant's
    organisation renews; only an authorised application whose authorisation was not revoked;
    one renewal of an authorisation at a time."""
    from countylab.operations.states import _STATUS_ZH
    from countylab.storage.authorisation_models import Authorisation

    if actor.org_id is None or actor.org_id != old.org_id:
        return PermissionDenied(
            f"只有申请单位的人员可以续期 {old.number}",
            f"Only the applicant's organisation may renew {old.number}",
            permission=Permission.application_submit.value,
            target=f"application:{old.id}",
            reason="organisation",
        )
    if old.status != ApplicationStatus.authorised:
        return Conflict(
            f"只有已授权的申请可以续期（{old.number} 当前为“{_STATUS_ZH.get(old.status, old.status)}”）",
            f"Only an authorised application can be renewed ({old.number} is {old.status})",
            field="status",
        )
    auth = (
        session.execute(select(Authorisation).where(Authorisation.project_id == old.project_id))
        .scalars()
        .first()
        if old.project_id is not None
        else None
    )
    if auth is not None and auth.status == "revoked":
        return Conflict(
            f"{old.number} 的授权已被撤销，不能续期",
            f"The authorisation of {old.number} was revoked: it cannot be renewed",
            field="status",
            reason="revoked",
        )
    open_ = [
        a for a in _renewal_chain(session, old) if a.renewal_of is not None and a.status in _RENEWAL_OPEN
    ]
    if open_:
        return Conflict(
            f"该授权已有一份续期申请 {open_[0].number} 正在办理，不能同时再续期",
            f"A renewal of this authorisation, {open_[0].number}, is already under way; "
            "only one renewal at a time",
            field="renewal_of",
            renewal_id=open_[0].id,
        )
    return None


def can_renew(session: Session, actor: Principal, app: Application) -> bool:
    """Whether the application's page offers 申请续期 to ``actor``."""
    return (
        has_permission(actor, Permission.application_submit) and _renewal_refusal(session, actor, app) is None
    )


def start_renewal(
    session: Session, actor: Principal, application_id: int, *, today: date | None = None
) -> Application:
    """A new draft renewing an ``authorised`` application, everything prefilled; the term starts
    the day after the authorisation ends (or today, when it has ended) and lasts as long.
    Commitments must be ticked again: they are the applicant's words for this term.

    Refused (nothing written) for another organisation, an application that is not authorised,
    a revoked authorisation, and while another renewal of the same authorisation is under way
    (the application's row is locked, so two at once on two servers cannot both pass)."""
    from countylab.storage.authorisation_models import Authorisation

    authorize(actor, Permission.application_submit, target=f"application:{application_id}")
    old = get(session, actor, application_id)
    session.execute(select(Application.id).where(Application.id == old.id).with_for_update())
    refusal = _renewal_refusal(session, actor, old)
    if refusal is not None:
        raise refusal
    day = today or utcnow().date()
    auth_end = (
        session.execute(select(Authorisation.ends_on).where(Authorisation.project_id == old.project_id))
        .scalars()
        .first()
        if old.project_id is not None
        else None
    )
    ends = max(d for d in (old.ends_on, auth_end) if d is not None) if (old.ends_on or auth_end) else None
    start = max(day, ends + timedelta(days=1)) if ends else day
    length = (old.ends_on - old.starts_on) if old.ends_on and old.starts_on else timedelta(days=365)
    reqs = tuple(
        RequestedDataset(r.dataset_id, tuple(r.columns) if r.columns else None)
        for r in session.execute(
            select(ApplicationDataset).where(ApplicationDataset.application_id == old.id)
        ).scalars()
    )
    data = ApplicationInput(
        scenario_id=old.scenario_id,
        title=old.title if old.title.endswith("（续期）") else f"{old.title}（续期）",
        purpose=old.purpose,
        datasets=reqs,
        channels=tuple(old.channels),
        member_ids=tuple(m for m in member_ids(session, old.id) if m != actor.user_id),
        starts_on=start,
        ends_on=start + min(length, timedelta(days=MAX_TERM_DAYS)),
        expected_outputs=old.expected_outputs,
    )
    return create(session, actor, data, today=day, renewal_of=old.id)
