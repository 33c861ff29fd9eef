"""To-do items (待办): what waits for this user, computed from the live state.

Not from notifications: a request another checker already decided, a grade a colleague
confirmed, a connector that synced again — each to-do disappears the moment the work is done,
by whoever.  Every item has a link and the time it has waited since (its age).

Per role (a user with several roles sees the union):

* checker: release requests under review that they may review (not their own project's, not
  yet voted in this round); a steward also sees those that need the security officer;
* developer: their projects' returned requests, requests released in the last week, and their
  jobs that finished in the last week, until they read the matching notification;
* steward: grades to confirm (datasets with a suggested grade), models awaiting approval,
  budget top-ups pending, dashboards waiting to be approved for the public pages;
* provider: connectors of their department whose last sync failed, and their own uploads that
  were staged but never confirmed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from countylab import labels
from countylab.i18n import LANGS
from countylab.identity.access import Principal
from countylab.identity.roles import Role
from countylab.notify.messages import age, aware, words
from countylab.storage.airlock_models import RegisteredModel, ReleaseRequest, ReleaseVote
from countylab.storage.catalog_models import Connector, SyncRun
from countylab.storage.jobs_models import Job
from countylab.storage.models import Dataset, Project
from countylab.storage.notify_models import Notification, NotificationRecipient
from countylab.storage.privacy_models import BudgetTopup

RECENT = timedelta(days=7)
UPLOAD_HORIZON = timedelta(days=2)
LIMIT = 50  # per kind: a to-do list is read, not scrolled


@dataclass(frozen=True)
class Todo:
    kind: str  # todo.review_release, todo.job_finished, …
    link: str
    since: datetime
    facts: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str) -> str:
        return words(self.kind, self.facts, lang)

    def to_json(self, lang: str, now: datetime | None = None) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text(lang),
            "link": self.link,
            "since": aware(self.since).isoformat(),
            "age": age(self.since, lang, now),
            "age_s": int(((now or datetime.now(UTC)) - aware(self.since)).total_seconds()),
        }


def todos(session: Session, principal: Principal, *, uploads_dir: Path | None = None) -> list[Todo]:
    """Every to-do of ``principal``, oldest first (what waited longest comes first)."""
    found: list[Todo] = []
    roles = principal.roles
    if principal.user_id is None:
        return found
    if Role.checker in roles or Role.steward in roles:
        found += _reviews(session, principal)
    if Role.developer in roles:
        found += _developer(session, principal)
    if Role.steward in roles:
        found += _steward(session)
        found += _dashboards(session, principal)
    if Role.provider in roles:
        found += _provider(session, principal, uploads_dir)
    from countylab.operations.workflow_todos import workflow_todos  # the approval steps (审批)

    found += workflow_todos(session, principal)
    from countylab.operations.scenario_todos import scenario_todos  # proposals, returned applications

    found += scenario_todos(session, principal)
    found.sort(key=lambda t: aware(t.since))
    return found


def _titles(session: Session, project_ids: set[int]) -> dict[int, str]:
    if not project_ids:
        return {}
    rows = session.execute(select(Project.id, Project.title).where(Project.id.in_(sorted(project_ids))))
    return {pid: title for pid, title in rows.all()}


def _reviews(session: Session, p: Principal) -> list[Todo]:
    q = (
        select(ReleaseRequest)
        .where(ReleaseRequest.state == "under_review")
        .order_by(ReleaseRequest.submitted_at)
        .limit(LIMIT * 4)
    )
    pending = [
        r
        for r in session.execute(q).scalars()
        if r.project_id not in p.project_ids
        and r.created_by != p.user_id
        and (Role.checker in p.roles or r.officer_needed)
    ]
    if not pending:
        return []
    voted = set(
        session.execute(
            select(ReleaseVote.request_id, ReleaseVote.round).where(
                ReleaseVote.voter_id == p.user_id, ReleaseVote.request_id.in_([r.id for r in pending])
            )
        ).all()
    )
    titles = _titles(session, {r.project_id for r in pending})
    return [
        Todo(
            "todo.review_release",
            f"/airlock/requests/{r.id}",
            r.submitted_at or r.created_at,
            {"id": r.id, "title": r.title or f"#{r.id}", "project": titles.get(r.project_id, "")},
        )
        for r in pending
        if (r.id, r.round) not in voted
    ][:LIMIT]


def _read_targets(session: Session, user_id: int, prefix: str) -> set[str]:
    """Targets of this user's notifications already read: "seen" for finished jobs and releases."""
    q = (
        select(Notification.target)
        .join(NotificationRecipient, NotificationRecipient.notification_id == Notification.id)
        .where(
            NotificationRecipient.user_id == user_id,
            NotificationRecipient.read_at.is_not(None),
            Notification.target.like(f"{prefix}%"),
        )
    )
    return set(session.execute(q).scalars())


def _developer(session: Session, p: Principal) -> list[Todo]:
    assert p.user_id is not None
    out: list[Todo] = []
    since = datetime.now(UTC) - RECENT
    if p.project_ids:
        seen = _read_targets(session, p.user_id, "release:")
        q = (
            select(ReleaseRequest)
            .where(
                ReleaseRequest.project_id.in_(sorted(p.project_ids)),
                (ReleaseRequest.state == "returned")
                | (
                    (ReleaseRequest.state.in_(["released", "approved"]))
                    & (ReleaseRequest.decided_at >= since)
                ),
            )
            .order_by(ReleaseRequest.id.desc())
            .limit(LIMIT)
        )
        rows = list(session.execute(q).scalars())
        titles = _titles(session, {r.project_id for r in rows})
        for r in rows:
            facts = {"id": r.id, "title": r.title or f"#{r.id}", "project": titles.get(r.project_id, "")}
            if r.state == "returned":
                out.append(
                    Todo(
                        "todo.release_returned",
                        f"/airlock/requests/{r.id}",
                        r.decided_at or r.created_at,
                        facts,
                    )
                )
            elif f"release:{r.id}" not in seen:
                out.append(
                    Todo(
                        "todo.release_released",
                        f"/airlock/requests/{r.id}",
                        r.decided_at or r.created_at,
                        facts,
                    )
                )
    seen_jobs = _read_targets(session, p.user_id, "job:")
    q2 = (
        select(Job)
        .where(
            Job.submitted_by == p.user_id,
            Job.finished_at >= since,
            Job.state.in_(["succeeded", "failed", "killed"]),
        )
        .order_by(Job.id.desc())
        .limit(LIMIT)
    )
    for j in session.execute(q2).scalars():
        if f"job:{j.id}" in seen_jobs or j.finished_at is None:
            continue
        kind = "todo.job_succeeded" if j.state == "succeeded" else "todo.job_failed"
        out.append(Todo(kind, f"/jobs/{j.id}", j.finished_at, {"id": j.id, "name": j.name or f"#{j.id}"}))
    return out


def _grade_words(code: str | None) -> dict[str, str]:
    """The grade by name in each language (一般数据3级), never its code (general_3)."""
    return {lang: labels.label("grade", code, lang) for lang in LANGS}


def _steward(session: Session) -> list[Todo]:
    out: list[Todo] = []
    grades = session.execute(
        select(Dataset)
        .where(Dataset.grade_confirmed.is_(False), Dataset.proposed_grade.is_not(None))
        .order_by(Dataset.updated_at)
        .limit(LIMIT)
    ).scalars()
    for d in grades:
        out.append(
            Todo(
                "todo.confirm_grade",
                f"/datasets/{d.id}",
                d.data_updated_at or d.updated_at or d.created_at,
                {"id": d.id, "title": d.title, "grade": _grade_words(d.proposed_grade)},
            )
        )
    models = session.execute(
        select(RegisteredModel)
        .where(RegisteredModel.state == "pending")
        .order_by(RegisteredModel.created_at)
        .limit(LIMIT)
    ).scalars()
    for m in models:
        out.append(Todo("todo.approve_model", f"/models/{m.id}", m.created_at, {"id": m.id, "name": m.name}))
    topups = list(
        session.execute(
            select(BudgetTopup)
            .where(BudgetTopup.status == "pending")
            .order_by(BudgetTopup.created_at)
            .limit(LIMIT)
        ).scalars()
    )
    titles = _titles(session, {t.project_id for t in topups})
    for t in topups:
        out.append(
            Todo(
                "todo.decide_topup",
                f"/query?project_id={t.project_id}",  # the console of the project that asks
                t.created_at,
                {"id": t.id, "project": titles.get(t.project_id, ""), "epsilon": f"{t.epsilon:g}"},
            )
        )
    return out


def _dashboards(session: Session, p: Principal) -> list[Todo]:
    """Dashboards waiting for the security officer's approval to go public, except the ones this
    steward asked for (four eyes: the approval is refused to whoever submitted it)."""
    from countylab.storage.dashboard_models import Dashboard, DashboardApproval

    rows = session.execute(
        select(DashboardApproval, Dashboard)
        .join(Dashboard, Dashboard.id == DashboardApproval.dashboard_id)
        .where(DashboardApproval.state == "pending", Dashboard.state == "pending")
        .order_by(DashboardApproval.requested_at)
        .limit(LIMIT)
    ).all()
    return [
        Todo("todo.approve_dashboard", f"/dashboards/{d.id}", a.requested_at, {"id": d.id, "title": d.title})
        for a, d in rows
        if a.requested_by != p.user_id
    ]


def _provider(session: Session, p: Principal, uploads_dir: Path | None) -> list[Todo]:
    out: list[Todo] = []
    if p.org_id is not None:
        latest = (
            select(SyncRun.connector_id, func.max(SyncRun.id).label("last"))
            .group_by(SyncRun.connector_id)
            .subquery()
        )
        q = (
            select(SyncRun, Connector, Dataset)
            .join(latest, latest.c.last == SyncRun.id)
            .join(Connector, Connector.id == SyncRun.connector_id)
            .join(Dataset, Dataset.id == Connector.dataset_id)
            .where(Dataset.org_id == p.org_id, SyncRun.status == "failed")
            .limit(LIMIT)
        )
        for run, c, d in session.execute(q).all():
            out.append(
                Todo(
                    "todo.connector_failed",
                    f"/datasets/{d.id}/connectors",
                    run.finished_at or run.started_at,
                    {"id": c.id, "title": d.title, "table": c.source_table},
                )
            )
    out += _staged_uploads(session, p, uploads_dir)
    return out


def _staged_uploads(session: Session, p: Principal, uploads_dir: Path | None) -> list[Todo]:
    """Uploads this user staged (header shown for confirmation) but never confirmed.

    They live as ``uploads/<id>/meta.json`` until committed or cleaned up; reading a few small
    files is cheaper than a table that would have to follow every clean-up."""
    if uploads_dir is None or not uploads_dir.is_dir():
        return []
    horizon = datetime.now(UTC) - UPLOAD_HORIZON
    found: list[tuple[datetime, int, str]] = []
    for meta_path in uploads_dir.glob("*/meta.json"):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get("user_id") != p.user_id:
            continue
        created = datetime.fromtimestamp(float(meta.get("created") or 0), UTC)
        if created < horizon:
            continue
        found.append((created, int(meta.get("dataset_id") or 0), str(meta.get("filename") or "")))
    if not found:
        return []
    titles = dict(
        session.execute(
            select(Dataset.id, Dataset.title).where(Dataset.id.in_(sorted({d for _c, d, _f in found})))
        ).all()
    )
    return [
        Todo("todo.confirm_upload", f"/datasets/{ds}", created, {"file": name, "title": titles.get(ds, "")})
        for created, ds, name in sorted(found)[:LIMIT]
        if ds in titles
    ]
