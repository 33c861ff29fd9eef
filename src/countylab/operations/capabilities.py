"""The capability list (能力清单): what enterprises and research institutes can offer.

The operator reads it beside the scenario list, field by field (可对接), to pair a department's
demand with an organisation's supply.  A developer publishes for their own organisation (an
enterprise or research institute); the operator may publish on behalf of one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.audit import log as audit
from countylab.errors import ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission, Role
from countylab.operations.scenarios import FIELDS, field_name, list_scenarios
from countylab.operations.states import ScenarioStatus
from countylab.storage.models import Org, utcnow
from countylab.storage.operations_models import Capability, Scenario

SUPPLIER_KINDS = frozenset({"enterprise", "research"})


def publish(
    session: Session,
    actor: Principal,
    *,
    title: str,
    description: str,
    field: str,
    org_id: int | None = None,
) -> Capability:
    org_id = org_id if org_id is not None else actor.org_id
    authorize(actor, Permission.capability_publish, target="capability:new")
    staff = actor.is_system or bool(actor.roles & {Role.operator, Role.admin})
    if not staff and org_id != actor.org_id:
        authorize(actor, Permission.capability_publish, org_id=org_id or -1, target="capability:new")
    org = session.get(Org, org_id) if org_id is not None else None
    if org is None or org.kind not in SUPPLIER_KINDS:
        raise ValidationFailed(
            "能力清单只能由企业或科研机构发布",
            "Only enterprises and research institutes list capabilities",
            field="org_id",
        )
    if not title.strip():
        raise ValidationFailed("请填写能力名称", "The capability needs a title", field="title")
    if field not in FIELDS:
        raise ValidationFailed(
            f"领域“{field}”不在清单中", f"Field {field!r} is not in the list", field="field"
        )
    cap = Capability(
        org_id=org.id,
        title=title.strip()[:200],
        description=description.strip(),
        field=field,
        visibility="public",
        status="open",
        created_by=actor.user_id,
        created_at=utcnow(),
    )
    session.add(cap)
    session.flush()
    audit.record(session, actor, "capability.publish", f"capability:{cap.id}", title=cap.title, field=field)
    return cap


def list_capabilities(session: Session, *, field: str = "") -> list[Capability]:
    stmt = select(Capability).where(Capability.status == "open").order_by(Capability.created_at.desc())
    if field:
        stmt = stmt.where(Capability.field == field)
    return list(session.execute(stmt).scalars())


def view(session: Session, cap: Capability, lang: str = "zh-CN") -> dict[str, object]:
    org = session.get(Org, cap.org_id)
    return {
        "id": cap.id,
        "title": cap.title,
        "description": cap.description,
        "field": cap.field,
        "field_name": field_name(cap.field, lang),
        "org_id": cap.org_id,
        "organisation": org.name if org else "",
        "status": cap.status,
        "created_at": cap.created_at.isoformat() if cap.created_at else None,
    }


@dataclass(frozen=True)
class Pairing:
    """One field with its open scenarios (demand) and capabilities (supply) side by side."""

    field: str
    scenarios: list[Scenario]
    capabilities: list[Capability]


def pairings(session: Session, actor: Principal) -> list[Pairing]:
    """可对接: per field, the scenarios still collecting or matched and the open capabilities;
    fields with both first."""
    out: list[Pairing] = []
    caps = list_capabilities(session)
    scs = [
        s
        for s in list_scenarios(session, actor)
        if s.status in (ScenarioStatus.collecting, ScenarioStatus.matched, ScenarioStatus.proposed)
    ]
    for code in FIELDS:
        a = [s for s in scs if s.field == code]
        b = [c for c in caps if c.field == code]
        if a or b:
            out.append(Pairing(code, a, b))
    out.sort(key=lambda p: not (p.scenarios and p.capabilities))
    return out
