"""The public part of the scenario list: what anyone may read without logging in.

Only ``public`` scenarios that are past the proposal stage (collecting, matched, in progress,
completed, closed) appear; internal (域内) scenarios and proposals never do.  A public entry
carries no personal data: the owning department, dates, the offered datasets' titles and grades
and the status, never a user's name.  The portal (``showcase``) reads :func:`public_scenarios`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.operations.scenarios import field_name, offers_of, status_name
from countylab.operations.states import ScenarioStatus
from countylab.storage.models import Org
from countylab.storage.operations_models import Scenario

#: statuses shown publicly (a proposal or a declined one is not a scenario of the county yet)
PUBLIC_STATUSES = (
    ScenarioStatus.collecting,
    ScenarioStatus.matched,
    ScenarioStatus.in_progress,
    ScenarioStatus.completed,
    ScenarioStatus.closed,
)


@dataclass(frozen=True)
class PublicDataset:
    title: str
    grade: str


@dataclass(frozen=True)
class PublicScenario:
    id: int
    title: str
    problem: str
    field: str
    field_name: str
    department: str
    status: str
    status_name: str
    apply_until: date | None
    datasets: list[str]  # the offered datasets' titles
    expected_outcome: str = ""
    apply_from: date | None = None
    offered: tuple[PublicDataset, ...] = ()
    version: int = 1  # the current version (场景修订: every edit is a new one)
    edited_at: datetime | None = None  # 更新于: when the current version was made (None: never edited)


def _build(session: Session, sc: Scenario, lang: str) -> PublicScenario:
    from countylab.operations.scenario_versions import current_version, last_edit

    org = session.get(Org, sc.org_id)
    offers = offers_of(session, sc.id)
    edit = last_edit(session, sc.id)
    return PublicScenario(
        id=sc.id,
        title=sc.title,
        problem=sc.problem,
        field=sc.field,
        field_name=field_name(sc.field, lang),
        department=org.name if org else "",
        status=sc.status,
        status_name=status_name(sc.status, lang),
        apply_until=sc.apply_until,
        datasets=[ds.title for _, ds in offers],
        expected_outcome=sc.expected_outcome,
        apply_from=sc.apply_from,
        offered=tuple(PublicDataset(ds.title, ds.grade) for _, ds in offers),
        version=current_version(session, sc.id),
        edited_at=edit.edited_at if edit else None,
    )


def public_scenarios(
    session: Session,
    *,
    limit: int | None = None,
    field: str = "",
    status: str = "",
    q: str = "",
    lang: str = "zh-CN",
) -> list[PublicScenario]:
    """Public scenarios, those collecting first, then newest first."""
    stmt = select(Scenario).where(
        Scenario.visibility == "public", Scenario.status.in_([s.value for s in PUBLIC_STATUSES])
    )
    if field:
        stmt = stmt.where(Scenario.field == field)
    if status:
        stmt = stmt.where(Scenario.status == status)
    if q.strip():
        like = f"%{q.strip()}%"
        stmt = stmt.where(Scenario.title.ilike(like) | Scenario.problem.ilike(like))
    rows = list(session.execute(stmt.order_by(Scenario.created_at.desc(), Scenario.id.desc())).scalars())
    rows.sort(key=lambda sc: sc.status != ScenarioStatus.collecting)  # stable: newest first within
    if limit is not None:
        rows = rows[:limit]
    return [_build(session, sc, lang) for sc in rows]


def public_scenario(session: Session, scenario_id: int, *, lang: str = "zh-CN") -> PublicScenario | None:
    """One public scenario, or None when it does not exist or is not public."""
    sc = session.get(Scenario, scenario_id)
    if sc is None or sc.visibility != "public" or sc.status not in PUBLIC_STATUSES:
        return None
    return _build(session, sc, lang)
