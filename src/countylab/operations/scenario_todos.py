"""To-do items (待办) of the scenario list and of applicants, computed from the live state: the
operator's proposals to accept or decline, and a team's returned applications to fix and
resubmit.  Each disappears the moment the work is done, by whoever does it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.identity.access import Principal
from countylab.identity.roles import Role
from countylab.notify.todos import LIMIT, Todo
from countylab.operations.states import ApplicationStatus, ScenarioStatus
from countylab.storage.operations_models import Application, ApplicationMember, Scenario


def scenario_todos(session: Session, principal: Principal) -> list[Todo]:
    found: list[Todo] = []
    if principal.roles & {Role.operator, Role.admin}:
        proposals = session.execute(
            select(Scenario)
            .where(Scenario.status == ScenarioStatus.proposed.value)
            .order_by(Scenario.created_at)
            .limit(LIMIT)
        ).scalars()
        found += [
            Todo("todo.scenario_proposed", f"/scenarios/{sc.id}", sc.created_at, {"title": sc.title})
            for sc in proposals
        ]
    if Role.developer in principal.roles and principal.user_id is not None:
        returned = session.execute(
            select(Application)
            .join(ApplicationMember, ApplicationMember.application_id == Application.id)
            .where(
                ApplicationMember.user_id == principal.user_id,
                Application.status == ApplicationStatus.returned.value,
            )
            .order_by(Application.updated_at)
            .limit(LIMIT)
        ).scalars()
        found += [
            Todo(
                "todo.application_returned",
                f"/applications/{a.id}",
                a.updated_at,
                {"number": a.number, "title": a.title, "reason": a.status_reason},
            )
            for a in returned
        ]
    return found
