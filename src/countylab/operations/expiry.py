"""Authorisations end on their date: the expiry sweep and the reminders before it.

One elected background service (:class:`ExpirySweep`, a :class:`countylab.periodic.Periodic`)
reads ``lab.clock`` each pass.  It

* marks every authorisation whose end date has passed ``expired`` (an event, an audit entry, a
  notification) and stops the project's queued and running jobs through the compute center's
  cancel path; queries, submissions and predictions are refused from that moment by
  :mod:`countylab.operations.enforcement` anyway, even before the sweep runs;
* sends the reminders 30 and 7 days ahead to the project owner and the operators, each exactly
  once: a reminder is a row with a unique (authorisation, end date, days ahead), inserted in the
  same transaction as its notification, so a restart or a second server never sends it twice,
  and a renewal (a new end date) earns new reminders.  Both notifications open the latest
  application's page, where its organisation starts the renewal (申请续期).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit, notify
from countylab.identity.access import SYSTEM
from countylab.identity.roles import Role
from countylab.operations.enforcement import beijing_today
from countylab.periodic import Periodic
from countylab.storage.authorisation_models import Authorisation, AuthorisationEvent, AuthorisationReminder
from countylab.storage.jobs_models import Job
from countylab.storage.models import ProjectMember
from countylab.storage.operations_models import Application

if TYPE_CHECKING:
    from countylab.jobs.service import JobService

REMINDER_DAYS = (30, 7)
UnitOfWork = Callable[[], AbstractContextManager[Session]]
LIVE_JOB_STATES = ("pending", "queued", "running")


def stop_jobs_with(service: JobService) -> Callable[[Session, int], int]:
    """The compute center's cancel path, as the system: queued jobs end now, running ones are
    asked to stop (the worker kills the sandbox within a fraction of a second)."""

    def stop(session: Session, project_id: int) -> int:
        ids = (
            session.execute(
                select(Job.id).where(Job.project_id == project_id, Job.state.in_(LIVE_JOB_STATES))
            )
            .scalars()
            .all()
        )
        for job_id in ids:
            service.cancel(session, SYSTEM, job_id)
        return len(ids)

    return stop


@dataclass
class SweepResult:
    expired: list[int]
    reminded: list[tuple[int, int]]
    jobs_stopped: int


def sweep(session: Session, *, now: datetime, stop_jobs: Callable[[Session, int], int] | None) -> SweepResult:
    today = beijing_today(now)
    result = SweepResult([], [], 0)
    due = (
        session.execute(
            select(Authorisation)
            .where(Authorisation.status.in_(("active", "suspended")), Authorisation.ends_on < today)
            .with_for_update()
        )
        .scalars()
        .all()
    )
    for auth in due:
        auth.status, auth.status_at = "expired", now
        auth.status_reason = f"授权期限于 {auth.ends_on} 届满"
        session.add(
            AuthorisationEvent(authorisation_id=auth.id, kind="expired", reason=auth.status_reason, at=now)
        )
        stopped = stop_jobs(session, auth.project_id) if stop_jobs is not None else 0
        result.jobs_stopped += stopped
        result.expired.append(auth.id)
        audit.record(
            session,
            SYSTEM,
            "authorisation.expire",
            f"authorisation:{auth.id}",
            project_id=auth.project_id,
            ends_on=auth.ends_on.isoformat(),
            jobs_stopped=stopped,
        )
        app = session.get(Application, auth.latest_application_id)
        notify.emit(
            session,
            "authorisation.expired",
            recipients=notify.to_project(auth.project_id) | notify.to_roles(Role.operator.value),
            target=f"project:{auth.project_id}",
            link=f"/applications/{auth.latest_application_id}",  # where the renewal starts
            number=app.number if app else "",
            ends_on=auth.ends_on.isoformat(),
        )
    active = (
        session.execute(
            select(Authorisation).where(Authorisation.status == "active", Authorisation.ends_on >= today)
        )
        .scalars()
        .all()
    )
    for auth in active:
        left = (auth.ends_on - today).days
        sent = set(
            session.execute(
                select(AuthorisationReminder.days_ahead).where(
                    AuthorisationReminder.authorisation_id == auth.id,
                    AuthorisationReminder.ends_on == auth.ends_on,
                )
            ).scalars()
        )
        due_days = [d for d in REMINDER_DAYS if left <= d and d not in sent]
        if not due_days:
            continue
        closest = min(due_days)  # 5 days left and nothing sent: one 7-day reminder, not two
        for d in due_days:
            session.add(
                AuthorisationReminder(
                    authorisation_id=auth.id, ends_on=auth.ends_on, days_ahead=d, sent_at=now
                )
            )
        session.flush()
        owner = (
            session.execute(
                select(ProjectMember.user_id).where(
                    ProjectMember.project_id == auth.project_id, ProjectMember.role == "owner"
                )
            )
            .scalars()
            .all()
        )
        app = session.get(Application, auth.latest_application_id)
        notify.emit(
            session,
            "authorisation.expiring",
            recipients=notify.to_users(*owner) | notify.to_roles(Role.operator.value),
            target=f"project:{auth.project_id}",
            link=f"/applications/{auth.latest_application_id}",  # its page offers 申请续期
            number=app.number if app else "",
            ends_on=auth.ends_on.isoformat(),
            days=left,
        )
        result.reminded.append((auth.id, closest))
    return result


class ExpirySweep(Periodic):
    """The elected loop: one pass a minute (a pass is a couple of indexed queries)."""

    thread_name = "countylab-authorisation-expiry"

    def __init__(
        self, tx: UnitOfWork, clock: Callable[[], datetime], jobs: JobService | None, interval_s: float = 60.0
    ) -> None:
        super().__init__()
        self.tx, self.clock, self.jobs, self.interval_s = tx, clock, jobs, interval_s

    def run_once(self) -> SweepResult:
        with self.tx() as s:
            return sweep(s, now=self.clock(), stop_jobs=stop_jobs_with(self.jobs) if self.jobs else None)

    def interval_s_now(self) -> float:
        return self.interval_s
