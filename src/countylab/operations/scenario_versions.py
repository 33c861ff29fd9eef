"""Editing a published scenario (场景修订): every edit is a new version, kept with who, when and why.

Who may publish a scenario may edit it (its department's provider, a leader, the operator, the
admin): the text (title, problem, expected outcome, field, visibility, window) and the offer
(datasets and columns).  A scenario that is over (closed, completed) or was never published
(proposed, declined) is not edited.  A reason is required.  The edit is checked like a
publication (:func:`scenarios._validate`: an unknown dataset or column is refused by name), and a
refused edit stores nothing.

Version 1 is the scenario as it was published; it is written on the first edit, so scenarios
published before versions existed get one too.  An application records the version it was first
submitted under (``applications.scenario_version``): a resubmission after a return is checked
against *that* offer, so an offer narrowed later never invalidates it, while a draft is checked
against the current offer.  Subscribers of the scenario's field hear of every edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from countylab.audit import log as audit
from countylab.errors import Conflict, PermissionDenied
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.operations import scenarios as sv
from countylab.operations.scenarios import ScenarioInput
from countylab.operations.states import ScenarioStatus
from countylab.storage.models import Dataset, utcnow
from countylab.storage.operations_models import Scenario, ScenarioDataset, ScenarioVersion

#: states in which a published scenario may be edited
EDITABLE = frozenset({ScenarioStatus.collecting, ScenarioStatus.matched, ScenarioStatus.in_progress})


@dataclass(frozen=True)
class VersionView:
    version: int
    content: dict[str, Any]
    reason: str
    edited_by: int | None
    edited_at: datetime


def snapshot(session: Session, sc: Scenario) -> dict[str, Any]:
    """The scenario's text and offer as stored in a version."""
    return {
        "title": sc.title,
        "problem": sc.problem,
        "expected_outcome": sc.expected_outcome,
        "field": sc.field,
        "visibility": sc.visibility,
        "apply_from": sc.apply_from.isoformat() if sc.apply_from else None,
        "apply_until": sc.apply_until.isoformat() if sc.apply_until else None,
        "offers": [
            {
                "dataset_id": o.dataset_id,
                "columns": list(o.columns) if o.columns is not None else None,
                "note": o.note,
            }
            for o, _ in sv.offers_of(session, sc.id)
        ],
    }


def versions(session: Session, scenario_id: int) -> list[VersionView]:
    """The recorded versions, oldest first (empty: never edited, the scenario is version 1)."""
    rows = session.execute(
        select(ScenarioVersion)
        .where(ScenarioVersion.scenario_id == scenario_id)
        .order_by(ScenarioVersion.version)
    ).scalars()
    return [VersionView(r.version, dict(r.content), r.reason, r.edited_by, r.edited_at) for r in rows]


def current_version(session: Session, scenario_id: int) -> int:
    n = session.execute(
        select(func.max(ScenarioVersion.version)).where(ScenarioVersion.scenario_id == scenario_id)
    ).scalar()
    return int(n or 1)


def last_edit(session: Session, scenario_id: int) -> VersionView | None:
    """The latest edit (version 2 and up), or None when the scenario was never edited."""
    found = versions(session, scenario_id)
    return found[-1] if len(found) > 1 else None


@dataclass(frozen=True)
class OfferedAt:
    """An offer as a version recorded it (the shape ``applications`` checks against)."""

    dataset_id: int
    columns: list[str] | None
    note: str = ""


def offer_at(session: Session, scenario_id: int, version: int | None) -> list[tuple[OfferedAt, Dataset]]:
    """The offer of ``version`` (None, or a version never recorded: the current offer)."""
    row = (
        session.execute(
            select(ScenarioVersion).where(
                ScenarioVersion.scenario_id == scenario_id, ScenarioVersion.version == version
            )
        ).scalar_one_or_none()
        if version is not None
        else None
    )
    if row is None:
        return [
            (OfferedAt(o.dataset_id, list(o.columns) if o.columns is not None else None, o.note), ds)
            for o, ds in sv.offers_of(session, scenario_id)
        ]
    out: list[tuple[OfferedAt, Dataset]] = []
    for o in row.content.get("offers", []):
        ds = session.get(Dataset, int(o["dataset_id"]))
        if ds is not None:
            out.append((OfferedAt(ds.id, o.get("columns"), str(o.get("note", ""))), ds))
    return out


def _refuse_state(sc: Scenario) -> None:
    if sc.status not in EDITABLE:
        raise Conflict(
            f"场景当前为“{sv.status_name(sc.status)}”，不能修改（只有征集中、已对接、实施中的场景可以修改）",
            f"The scenario is {sv.status_name(sc.status, 'en')}; only a collecting, matched or "
            "in-progress scenario can be edited",
            field="status",
        )


def may_edit(actor: Principal, sc: Scenario) -> bool:
    """Whether the scenario's page offers 修改 to ``actor``."""
    return sc.status in EDITABLE and sv._may_manage(actor, sc)


def edit(session: Session, actor: Principal, scenario_id: int, data: ScenarioInput, reason: str) -> Scenario:
    """Replace the text and offer of a published scenario; a new version with ``reason``.

    The owning department does not change (``data.org_id`` is ignored).  Refused, with nothing
    stored: not permitted, a scenario that is not published or is over, an empty reason, an
    invalid text or offer (an unknown dataset or column is named)."""
    authorize(actor, Permission.scenario_publish, target=f"scenario:{scenario_id}")
    sc = sv.get(session, actor, scenario_id)
    if not sv._may_manage(actor, sc):
        raise PermissionDenied(
            "只有责任部门、领导或运营方可以修改场景",
            "Only the owning department, a leader or the operator may edit a scenario",
            permission=Permission.scenario_publish.value,
            target=f"scenario:{sc.id}",
            reason="organisation",
        )
    _refuse_state(sc)
    why = sv._need_reason(reason)
    offers = sv._validate(session, data)
    now = utcnow()
    before = snapshot(session, sc)
    number = current_version(session, sc.id)
    if number == 1 and not versions(session, sc.id):
        session.add(
            ScenarioVersion(
                scenario_id=sc.id,
                version=1,
                content=before,
                reason="发布 / published",
                edited_by=sc.created_by,
                edited_at=sc.created_at or now,
            )
        )
    sc.title = data.title.strip()
    sc.problem = data.problem.strip()
    sc.expected_outcome = data.expected_outcome.strip()
    sc.field = data.field
    sc.visibility = data.visibility
    sc.apply_from = data.apply_from
    sc.apply_until = data.apply_until
    sc.updated_at = now
    session.flush()
    session.execute(delete(ScenarioDataset).where(ScenarioDataset.scenario_id == sc.id))
    session.add_all(
        ScenarioDataset(
            scenario_id=sc.id,
            dataset_id=ds.id,
            columns=list(offer.columns) if offer.columns is not None else None,
            note=offer.note,
        )
        for offer, ds in offers
    )
    session.flush()
    after = snapshot(session, sc)
    session.add(
        ScenarioVersion(
            scenario_id=sc.id,
            version=number + 1,
            content=after,
            reason=why,
            edited_by=actor.user_id,
            edited_at=now,
        )
    )
    session.flush()
    changed = sorted(k for k in after if after[k] != before.get(k))
    audit.record(
        session,
        actor,
        "scenario.edit",
        f"scenario:{sc.id}",
        title=sc.title,
        version=number + 1,
        reason=why,
        changed=changed,
        datasets=[o.dataset_id for o in data.offers],
    )
    from countylab.operations.subscriptions import announce_edit

    announce_edit(session, sc, actor, version=number + 1, reason=why)
    return sc


def view_versions(session: Session, scenario_id: int) -> list[dict[str, Any]]:
    """The history for the API and the page: newest first, with the edit's facts."""
    from countylab.labels import person
    from countylab.storage.models import User

    out: list[dict[str, Any]] = []
    for v in reversed(versions(session, scenario_id)):
        user = session.get(User, v.edited_by) if v.edited_by else None
        out.append(
            {
                "version": v.version,
                "reason": v.reason,
                "edited_by": v.edited_by,
                "edited_by_name": person(user.display_name, user.username) if user else "",
                "edited_at": v.edited_at.isoformat(),
                "title": v.content.get("title", ""),
                "datasets": [o["dataset_id"] for o in v.content.get("offers", [])],
            }
        )
    return out
