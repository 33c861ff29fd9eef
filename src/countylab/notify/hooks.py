"""The notification points of each capability, one call each from the domain code.

Each capability calls one of these inside the transaction of its action (a couple of lines in
its own module), so the words, the recipients and the de-duplication of every event live here,
in one place, instead of being spread over airlock, jobs, privacy, serving, connectors and
catalog.  Each function only adds rows; none commits, raises on a missing fact, or reads more
than a few rows by key.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import labels
from countylab.notify.events import Recipients, emit, settle, to_roles, to_users
from countylab.storage.airlock_models import RegisteredModel, ReleaseRequest
from countylab.storage.catalog_models import Connector, SyncRun
from countylab.storage.jobs_models import Job
from countylab.storage.models import Dataset, Project
from countylab.storage.privacy_models import BudgetTopup

T = TypeVar("T")


def _project(session: Session, project_id: int) -> str:
    p = session.get(Project, project_id)
    return p.title if p is not None else f"#{project_id}"


def _both(kind: str, code: str) -> dict[str, str]:
    return {"zh-CN": labels.label(kind, code, "zh-CN"), "en": labels.label(kind, code, "en")}


def release_notice(
    session: Session, req: ReleaseRequest, result: T, *, actor_id: int | None = None, review: bool = True
) -> T:
    """After checks (``review``: a request now under review goes to the checkers) or a vote:
    tell whoever must act next.  Returns ``result`` so the caller's ``return`` stays one line."""
    facts: dict[str, Any] = {
        "id": req.id,
        "title": req.title or f"#{req.id}",
        "project": _project(session, req.project_id),
    }
    target = f"release:{req.id}"
    if req.state == "under_review" and review:
        who: Recipients = to_roles("checker", exclude_project=req.project_id)
        if req.officer_needed:
            who = who | to_roles("steward", exclude_project=req.project_id)
        emit(session, "release.submitted", recipients=who, target=target, actor_id=req.created_by, **facts)
    elif req.state in ("returned", "rejected", "released"):
        settle(session, target, "release.submitted")  # nothing left to review
        emit(
            session,
            f"release.{req.state}",
            recipients=to_users(req.created_by),
            target=target,
            actor_id=actor_id,
            **facts,
        )
    return result


def job_notice(session: Session, job: Job, state: str) -> None:
    """A job finished: its submitter hears how (cancelled jobs were the submitter's own doing)."""
    if state not in ("succeeded", "failed", "killed"):
        return
    kind = "job.succeeded" if state == "succeeded" else "job.failed"
    emit(
        session,
        kind,
        recipients=to_users(job.submitted_by),
        target=f"job:{job.id}",
        id=job.id,
        name=job.name or f"#{job.id}",
        state=_both("job_state", state),
        project=_project(session, job.project_id),
    )


def topup_notice(session: Session, row: BudgetTopup, actor_id: int | None = None) -> None:
    """A top-up asked for (stewards decide) or decided (the requester hears)."""
    ds = session.get(Dataset, row.dataset_id)
    facts: dict[str, Any] = {
        "id": row.id,
        "project": _project(session, row.project_id),
        "dataset": ds.title if ds is not None else f"#{row.dataset_id}",
        "epsilon": f"{row.epsilon:g}",
    }
    target = f"topup:{row.id}"
    if row.status == "pending":
        emit(
            session,
            "budget.topup_requested",
            recipients=to_roles("steward"),
            target=target,
            link=f"/query?project_id={row.project_id}",
            actor_id=actor_id,
            **facts,
        )
    else:
        settle(session, target, "budget.topup_requested")
        emit(
            session,
            f"budget.topup_{row.status}",
            recipients=to_users(row.requested_by),
            target=target,
            link=f"/query?project_id={row.project_id}",
            actor_id=actor_id,
            **facts,
        )


def model_notice(session: Session, model: RegisteredModel, actor_id: int | None = None) -> None:
    """A model registered (stewards approve it) or decided (its registrant hears)."""
    facts: dict[str, Any] = {
        "id": model.id,
        "name": model.name,
        "project": _project(session, model.project_id),
    }
    if model.state == "pending":
        who = to_roles("steward")
        emit(session, "model.pending", recipients=who, target=f"model:{model.id}", actor_id=actor_id, **facts)
    else:
        settle(session, f"model:{model.id}", "model.pending")
        emit(
            session,
            f"model.{model.state}",
            recipients=to_users(model.created_by),
            target=f"model:{model.id}",
            actor_id=actor_id,
            **facts,
        )


def connector_notice(session: Session, run: SyncRun, reason: dict[str, str]) -> None:
    """A sync failed: the providers of the dataset's department hear, once per failing streak
    (a source down for a day fails every few minutes; one notice, and the to-do stays)."""
    before = session.execute(
        select(SyncRun.status)
        .where(SyncRun.connector_id == run.connector_id, SyncRun.id < run.id, SyncRun.status != "running")
        .order_by(SyncRun.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if before == "failed":
        return
    c = session.get(Connector, run.connector_id)
    ds = session.get(Dataset, c.dataset_id) if c is not None else None
    if c is None or ds is None:
        return
    emit(
        session,
        "connector.failed",
        recipients=to_roles("provider", org_id=ds.org_id),
        target=f"connector:{c.id}",
        link=f"/datasets/{ds.id}/connectors",
        id=c.id,
        title=ds.title,
        table=c.source_table,
        reason={"zh-CN": reason.get("zh", ""), "en": reason.get("en", "")},
    )


def grade_notice(session: Session, ds: Dataset, previous: str | None) -> None:
    """New data suggests a grade the steward has not confirmed: once per new suggestion.  Once
    confirmed (also called then), the stewards' unread suggestions of it are settled."""
    if ds.grade_confirmed:
        settle(session, f"dataset:{ds.id}", "grade.to_confirm")
        return
    if not ds.proposed_grade or ds.proposed_grade == previous:
        return
    emit(
        session,
        "grade.to_confirm",
        recipients=to_roles("steward"),
        target=f"dataset:{ds.id}",
        id=ds.id,
        title=ds.title,
        grade=_both("grade", ds.proposed_grade),
    )
