"""The scenario list (场景清单 / 机会清单): problems departments want solved, with the data on offer.

无场景不授权: every data-use application names a scenario, so the scenario is where the lab says
*why* data may be used at all.  A department (its provider), a leader, the operator or the admin
publishes one; a developer may propose one of their own, which stays ``proposed`` until the
operator accepts it.  Status changes go only through :data:`states.SCENARIO_TRANSITIONS`, each
with a reason, each audited.

Visibility: ``public`` scenarios appear on the public pages (:mod:`.public`) and to every
logged-in user; ``internal`` (域内) ones only to users of departments and the platform, never to
enterprises or research institutes.  核心 (core) datasets may be offered only for in-domain use:
an application from an external organisation for one is refused (:mod:`.applications`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.audit import log as audit
from countylab.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from countylab.identity.access import Principal, authorize, has_permission
from countylab.identity.roles import Permission, Role
from countylab.operations.states import ScenarioStatus, may_move_scenario
from countylab.storage.models import Dataset, Org, utcnow
from countylab.storage.operations_models import Scenario, ScenarioDataset

#: 领域: the fixed list of fields a scenario or capability belongs to (code -> (中文, English))
FIELDS: dict[str, tuple[str, str]] = {
    "elderly_care": ("养老服务", "Elderly care"),
    "agriculture": ("农业农村", "Agriculture and rural affairs"),
    "transport": ("交通出行", "Transport"),
    "industry": ("工业经济", "Industry and economy"),
    "health": ("卫生健康", "Health"),
    "ecology": ("生态环境", "Ecology and environment"),
    "governance": ("社会治理", "Social governance"),
    "social_assistance": ("社会救助", "Social assistance"),
    "education": ("教育", "Education"),
}

STATUS_NAMES: dict[str, tuple[str, str]] = {
    "proposed": ("待受理", "Proposed"),
    "collecting": ("征集中", "Collecting"),
    "matched": ("已对接", "Matched"),
    "in_progress": ("实施中", "In progress"),
    "completed": ("已完成", "Completed"),
    "closed": ("已关闭", "Closed"),
    "rejected": ("未受理", "Declined"),
}

VISIBILITIES = ("public", "internal")
#: organisations whose users see internal (域内) scenarios
IN_DOMAIN_KINDS = frozenset({"department", "platform"})
#: roles that see every scenario, proposals included
_STAFF = frozenset({Role.admin, Role.operator, Role.leader, Role.steward})


def field_name(code: str, lang: str = "zh-CN") -> str:
    pair = FIELDS.get(code)
    return (pair[1] if lang.startswith("en") else pair[0]) if pair else code


def status_name(code: str, lang: str = "zh-CN") -> str:
    pair = STATUS_NAMES.get(code)
    return (pair[1] if lang.startswith("en") else pair[0]) if pair else code


@dataclass(frozen=True)
class Offer:
    """A dataset a scenario offers; ``columns`` None offers every column."""

    dataset_id: int
    columns: tuple[str, ...] | None = None
    note: str = ""


@dataclass(frozen=True)
class ScenarioInput:
    title: str
    problem: str
    org_id: int | None  # the owning department; None: the actor's own
    field: str
    offers: tuple[Offer, ...]
    expected_outcome: str = ""
    apply_from: date | None = None
    apply_until: date | None = None
    visibility: str = "public"


def in_domain(session: Session, org_id: int | None) -> bool:
    """Whether users of ``org_id`` are inside the government domain (department or platform)."""
    if org_id is None:
        return False
    org = session.get(Org, org_id)
    return org is not None and org.kind in IN_DOMAIN_KINDS


def is_staff(actor: Principal) -> bool:
    return actor.is_system or bool(actor.roles & _STAFF)


def can_see(session: Session, actor: Principal, sc: Scenario) -> bool:
    """Who sees a scenario: staff everything; the proposer their proposal; the owning
    department its own; everyone logged in the public ones; the domain the internal ones."""
    if is_staff(actor) or (actor.user_id is not None and sc.proposed_by == actor.user_id):
        return True
    if actor.org_id is not None and actor.org_id == sc.org_id:
        return True
    if sc.status in (ScenarioStatus.proposed, ScenarioStatus.rejected):
        return False
    if sc.visibility == "public":
        return True
    return in_domain(session, actor.org_id)


def get(session: Session, actor: Principal, scenario_id: int) -> Scenario:
    sc = session.get(Scenario, scenario_id)
    if sc is None or not can_see(session, actor, sc):
        raise NotFound(f"场景 #{scenario_id} 不存在", f"Scenario #{scenario_id} not found")
    return sc


def offers_of(session: Session, scenario_id: int) -> list[tuple[ScenarioDataset, Dataset]]:
    rows = session.execute(
        select(ScenarioDataset, Dataset)
        .join(Dataset, Dataset.id == ScenarioDataset.dataset_id)
        .where(ScenarioDataset.scenario_id == scenario_id)
        .order_by(Dataset.id)
    ).all()
    return [(r[0], r[1]) for r in rows]


def list_scenarios(
    session: Session,
    actor: Principal,
    *,
    field: str = "",
    status: str = "",
    q: str = "",
    dataset_id: int | None = None,
) -> list[Scenario]:
    """The scenarios ``actor`` may see, newest first, filtered by field, status, words, dataset."""
    stmt = select(Scenario).order_by(Scenario.created_at.desc(), Scenario.id.desc())
    if field:
        stmt = stmt.where(Scenario.field == field)
    if status:
        stmt = stmt.where(Scenario.status == status)
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(Scenario.title.ilike(like) | Scenario.problem.ilike(like))
    if dataset_id is not None:
        stmt = stmt.where(
            Scenario.id.in_(
                select(ScenarioDataset.scenario_id).where(ScenarioDataset.dataset_id == dataset_id)
            )
        )
    return [sc for sc in session.execute(stmt).scalars() if can_see(session, actor, sc)]


def is_open(sc: Scenario, today: date) -> bool:
    """Open for applications: collecting, and inside its window."""
    return (
        sc.status == ScenarioStatus.collecting
        and (sc.apply_from is None or sc.apply_from <= today)
        and (sc.apply_until is None or today <= sc.apply_until)
    )


def _dataset_columns(ds: Dataset) -> list[str]:
    return [str(c["name"]) for c in (ds.table_schema or {}).get("columns", [])]


def _validate(session: Session, data: ScenarioInput) -> list[tuple[Offer, Dataset]]:
    if not data.title.strip():
        raise ValidationFailed("请填写场景名称", "The scenario needs a title", field="title")
    if len(data.title) > 200:
        raise ValidationFailed("场景名称不能超过 200 字", "The title is longer than 200", field="title")
    if not data.problem.strip():
        raise ValidationFailed("请描述要解决的问题", "Describe the problem to solve", field="problem")
    if data.field not in FIELDS:
        raise ValidationFailed(
            f"领域“{data.field}”不在清单中", f"Field {data.field!r} is not in the list", field="field"
        )
    if data.visibility not in VISIBILITIES:
        raise ValidationFailed(
            f"可见范围“{data.visibility}”无效（public 或 internal）",
            f"Visibility {data.visibility!r} is invalid (public or internal)",
            field="visibility",
        )
    if data.apply_from and data.apply_until and data.apply_until < data.apply_from:
        raise ValidationFailed(
            "申请截止日期早于开始日期", "The window ends before it starts", field="apply_until"
        )
    if not data.offers:
        raise ValidationFailed("请至少提供一个数据集", "Offer at least one dataset", field="datasets")
    found: list[tuple[Offer, Dataset]] = []
    seen: set[int] = set()
    for offer in data.offers:
        ds = session.get(Dataset, offer.dataset_id)
        if ds is None:
            raise ValidationFailed(
                f"数据集 #{offer.dataset_id} 不存在",
                f"Dataset #{offer.dataset_id} does not exist",
                field="datasets",
                dataset_id=offer.dataset_id,
            )
        if ds.id in seen:
            raise ValidationFailed(
                f"数据集“{ds.title}”重复", f"Dataset {ds.title!r} is listed twice", field="datasets"
            )
        seen.add(ds.id)
        if offer.columns is not None:
            known = set(_dataset_columns(ds))
            bad = [c for c in offer.columns if c not in known]
            if bad or not offer.columns:
                raise ValidationFailed(
                    f"数据集“{ds.title}”没有列：{'、'.join(bad) or '（空）'}",
                    f"Dataset {ds.title!r} has no column {', '.join(bad) or '(none given)'}",
                    field="columns",
                    dataset_id=ds.id,
                    column=bad[0] if bad else "",
                )
        found.append((offer, ds))
    return found


def _insert(
    session: Session, actor: Principal, data: ScenarioInput, org_id: int, status: ScenarioStatus
) -> Scenario:
    offers = _validate(session, data)
    org = session.get(Org, org_id)
    if org is None or org.kind not in IN_DOMAIN_KINDS:
        raise ValidationFailed(
            "场景的责任单位必须是政府部门", "A scenario's owner must be a department", field="org_id"
        )
    now = utcnow()
    sc = Scenario(
        title=data.title.strip(),
        problem=data.problem.strip(),
        expected_outcome=data.expected_outcome.strip(),
        field=data.field,
        org_id=org_id,
        visibility=data.visibility,
        status=status.value,
        apply_from=data.apply_from,
        apply_until=data.apply_until,
        proposed_by=actor.user_id if status == ScenarioStatus.proposed else None,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
        status_reason="",
    )
    session.add(sc)
    session.flush()
    for offer, ds in offers:
        session.add(
            ScenarioDataset(
                scenario_id=sc.id,
                dataset_id=ds.id,
                columns=list(offer.columns) if offer.columns is not None else None,
                note=offer.note,
            )
        )
    session.flush()
    return sc


def publish(session: Session, actor: Principal, data: ScenarioInput) -> Scenario:
    """Publish a scenario (征集中).  A provider publishes for their own department only."""
    org_id = data.org_id if data.org_id is not None else actor.org_id
    authorize(actor, Permission.scenario_publish, target="scenario:new")
    if org_id is None:
        raise ValidationFailed("请选择责任单位", "Choose the owning department", field="org_id")
    broad = actor.is_system or bool(actor.roles & {Role.admin, Role.operator, Role.leader})
    if not broad and actor.org_id != org_id:
        authorize(actor, Permission.scenario_publish, org_id=org_id, target="scenario:new")
    sc = _insert(session, actor, data, org_id, ScenarioStatus.collecting)
    audit.record(
        session,
        actor,
        "scenario.publish",
        f"scenario:{sc.id}",
        title=sc.title,
        field=sc.field,
        visibility=sc.visibility,
        datasets=[o.dataset_id for o in data.offers],
    )
    from countylab.operations.subscriptions import announce

    announce(session, sc, actor)
    return sc


def propose(session: Session, actor: Principal, data: ScenarioInput) -> Scenario:
    """A developer's own scenario: ``proposed`` until the operator accepts it.  The owning
    department is the one named, else the owner of the first dataset asked for."""
    authorize(actor, Permission.scenario_propose, target="scenario:new")
    org_id = data.org_id
    if org_id is None and data.offers:
        ds = session.get(Dataset, data.offers[0].dataset_id)
        org_id = ds.org_id if ds is not None else None
    if org_id is None:
        raise ValidationFailed("请选择责任单位", "Choose the owning department", field="org_id")
    sc = _insert(session, actor, data, org_id, ScenarioStatus.proposed)
    audit.record(session, actor, "scenario.propose", f"scenario:{sc.id}", title=sc.title, field=sc.field)
    from countylab import notify

    notify.emit(
        session,
        "scenario.proposed",
        recipients=notify.to_roles(Role.operator),
        target=f"scenario:{sc.id}",
        link=f"/scenarios/{sc.id}",
        actor_id=actor.user_id,
        title=sc.title,
    )
    return sc


def _need_reason(reason: str) -> str:
    if not reason.strip():
        raise ValidationFailed("请填写理由", "Give a reason", field="reason")
    return reason.strip()[:2000]


def _may_manage(actor: Principal, sc: Scenario) -> bool:
    if actor.is_system or actor.roles & {Role.admin, Role.operator, Role.leader}:
        return True
    return has_permission(actor, Permission.scenario_publish) and actor.org_id == sc.org_id


def change_status(session: Session, actor: Principal, scenario_id: int, new: str, reason: str) -> Scenario:
    """Move a scenario along :data:`SCENARIO_TRANSITIONS` (征集中 → 已对接 → 实施中 → 已完成 /
    已关闭).  Proposals move only by :func:`accept` and :func:`decline` (the operator)."""
    authorize(actor, Permission.scenario_publish, target=f"scenario:{scenario_id}")
    sc = get(session, actor, scenario_id)
    try:
        target = ScenarioStatus(new)
    except ValueError:
        raise ValidationFailed(f"状态“{new}”无效", f"Unknown status {new!r}", field="status") from None
    if sc.status == ScenarioStatus.proposed:
        if target == ScenarioStatus.collecting:
            return accept(session, actor, scenario_id, reason)
        if target == ScenarioStatus.rejected:
            return decline(session, actor, scenario_id, reason)
    if not _may_manage(actor, sc):
        raise PermissionDenied(
            "只有责任部门、领导或运营方可以变更场景状态",
            "Only the owning department, a leader or the operator may change a scenario's status",
            permission=Permission.scenario_publish.value,
            target=f"scenario:{sc.id}",
            reason="organisation",
        )
    return _move(session, actor, sc, target, _need_reason(reason), "scenario.status")


def _move(
    session: Session, actor: Principal, sc: Scenario, target: ScenarioStatus, reason: str, action: str
) -> Scenario:
    if not may_move_scenario(sc.status, target):
        raise Conflict(
            f"场景当前为“{status_name(sc.status)}”，不能变为“{status_name(target)}”",
            f"The scenario is {status_name(sc.status, 'en')}; it cannot become {status_name(target, 'en')}",
            field="status",
        )
    before = sc.status
    sc.status = target.value
    sc.status_reason = reason
    sc.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        action,
        f"scenario:{sc.id}",
        title=sc.title,
        before=before,
        after=sc.status,
        reason=reason,
    )
    if target == ScenarioStatus.collecting:
        from countylab.operations.subscriptions import announce

        announce(session, sc, actor)
    return sc


def _operator(actor: Principal, scenario_id: int) -> None:
    authorize(actor, Permission.scenario_publish, target=f"scenario:{scenario_id}")
    if not (actor.is_system or actor.roles & {Role.operator, Role.admin}):
        raise PermissionDenied(
            "只有运营方可以受理自拟场景",
            "Only the operator may accept or decline a proposed scenario",
            permission=Permission.scenario_publish.value,
            target=f"scenario:{scenario_id}",
            reason="role",
        )


def accept(session: Session, actor: Principal, scenario_id: int, reason: str = "") -> Scenario:
    """The operator accepts a proposal: it becomes a scenario collecting applications."""
    _operator(actor, scenario_id)
    sc = get(session, actor, scenario_id)
    _move(session, actor, sc, ScenarioStatus.collecting, reason.strip() or "受理", "scenario.accept")
    _tell_proposer(session, actor, sc, "scenario.accepted")
    return sc


def decline(session: Session, actor: Principal, scenario_id: int, reason: str) -> Scenario:
    """The operator declines a proposal, with a reason the proposer reads."""
    _operator(actor, scenario_id)
    sc = get(session, actor, scenario_id)
    _move(session, actor, sc, ScenarioStatus.rejected, _need_reason(reason), "scenario.decline")
    _tell_proposer(session, actor, sc, "scenario.declined", reason=sc.status_reason)
    return sc


def _tell_proposer(session: Session, actor: Principal, sc: Scenario, kind: str, **facts: str) -> None:
    """The developer who proposed ``sc`` hears the operator's decision (accepted or declined)."""
    if sc.proposed_by is None:
        return
    from countylab import notify

    notify.emit(
        session,
        kind,
        recipients=notify.to_users(sc.proposed_by),
        target=f"scenario:{sc.id}",
        link=f"/scenarios/{sc.id}",
        actor_id=actor.user_id,
        title=sc.title,
        **facts,
    )


def view(session: Session, sc: Scenario, lang: str = "zh-CN") -> dict[str, object]:
    """A scenario as JSON for the API, the CLI and the pages (no user names: ids only)."""
    org = session.get(Org, sc.org_id)
    return {
        "id": sc.id,
        "title": sc.title,
        "problem": sc.problem,
        "expected_outcome": sc.expected_outcome,
        "field": sc.field,
        "field_name": field_name(sc.field, lang),
        "org_id": sc.org_id,
        "department": org.name if org else "",
        "visibility": sc.visibility,
        "status": sc.status,
        "status_name": status_name(sc.status, lang),
        "status_reason": sc.status_reason,
        "apply_from": sc.apply_from.isoformat() if sc.apply_from else None,
        "apply_until": sc.apply_until.isoformat() if sc.apply_until else None,
        "proposed": sc.proposed_by is not None,
        "created_at": sc.created_at.isoformat() if sc.created_at else None,
        "version": _version_of(session, sc.id),
        "datasets": [
            {
                "dataset_id": ds.id,
                "name": ds.name,
                "title": ds.title,
                "grade": ds.grade,
                "columns": list(offer.columns) if offer.columns is not None else None,
                "note": offer.note,
                "in_domain_only": ds.grade == "core",
            }
            for offer, ds in offers_of(session, sc.id)
        ],
    }


def _version_of(session: Session, scenario_id: int) -> int:
    from countylab.operations.scenario_versions import current_version

    return current_version(session, scenario_id)
