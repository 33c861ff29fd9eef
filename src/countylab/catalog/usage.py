"""Who uses a department's data (使用情况): grants, DP queries, jobs, releases, models.

A provider lends its residents' data to projects it does not run; it should see, per dataset,
who was given it and what came of it, without asking the steward.  What this shows, and what
it deliberately does not (docs/how-to/notifications.md, "使用情况"):

* shown, aggregated: each grant (project, the project's organisation, since when, the channels
  used: DP gateway, jobs, models); DP queries per project and calendar month (Beijing time):
  how many were charged and the ε spent on this dataset; jobs that read it (name, project,
  state, when); releases derived from it (title, project, state, files, released when);
  models trained on it (name, project, state);
* never shown: query text, job code, logs, file names or contents of other organisations'
  work — the provider learns *that* and *how much*, not *what*.  Stewards and admins, who
  already see query history, get the same page for every dataset.

Who may read it: providers of the dataset's own department, stewards and admins.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.catalog.service import get_dataset
from countylab.errors import PermissionDenied
from countylab.identity.access import Principal
from countylab.identity.roles import Role
from countylab.storage.airlock_models import RegisteredModel, ReleaseFile, ReleaseRequest
from countylab.storage.jobs_models import Job
from countylab.storage.models import Dataset, Grant, Org, Project
from countylab.storage.privacy_models import PROJECT_WIDE, BudgetEntry

BEIJING = ZoneInfo("Asia/Shanghai")
RECENT_ITEMS = 50  # per list: the newest; counts cover everything
JOB_SCAN = 2000  # newest jobs of the granted projects read for their inputs


def may_see(actor: Principal, ds: Dataset) -> bool:
    if actor.is_system or actor.roles & {Role.steward, Role.admin}:
        return True
    return Role.provider in actor.roles and actor.org_id is not None and actor.org_id == ds.org_id


def _authorize(actor: Principal, ds: Dataset) -> None:
    if not may_see(actor, ds):
        raise PermissionDenied(
            "只有数据集所属部门的数据提供方和数据安全官可以查看使用情况",
            "Only providers of the dataset's department and security officers see its usage",
            permission="dataset.usage",
            target=f"dataset:{ds.id}",
            reason="org",
        )


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).isoformat()


def _month(ts: datetime) -> str:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(BEIJING).strftime("%Y-%m")


def _reads(spec: dict[str, Any] | None) -> frozenset[str]:
    """The dataset names a job spec's actions read."""
    actions = (spec or {}).get("actions") or {}
    values = actions.values() if isinstance(actions, dict) else actions
    return frozenset(
        n for a in values if isinstance(a, dict) for n in (a.get("datasets") or []) if isinstance(n, str)
    )


@dataclass(frozen=True)
class _JobRow:
    """What usage needs of a job, with the datasets its spec reads parsed once."""

    id: int
    project_id: int
    name: str
    state: str
    finished_at: datetime | None
    created_at: datetime
    reads: frozenset[str]


def _jobs(session: Session, project_ids: set[int] | None, limit: int = JOB_SCAN) -> list[_JobRow]:
    """The newest jobs (of ``project_ids``; None: of every project), columns only."""
    q = select(Job.id, Job.project_id, Job.name, Job.state, Job.finished_at, Job.created_at, Job.spec)
    if project_ids is not None:
        q = q.where(Job.project_id.in_(sorted(project_ids)))
    rows = session.execute(q.order_by(Job.id.desc()).limit(limit)).all()
    return [_JobRow(r[0], r[1], r[2], r[3], r[4], r[5], _reads(r[6])) for r in rows]


def _releases(session: Session) -> list[ReleaseRequest]:
    return list(session.execute(select(ReleaseRequest).order_by(ReleaseRequest.id.desc())).scalars())


def dataset_usage(
    session: Session,
    actor: Principal,
    dataset_id: int,
    *,
    all_releases: list[ReleaseRequest] | None = None,
    all_jobs: list[_JobRow] | None = None,
) -> dict[str, Any]:
    """Everything the module docstring lists, for one dataset (``all_releases``: every release
    request, newest first, read once by :func:`department_usage` for all its datasets)."""
    ds = get_dataset(session, dataset_id)
    _authorize(actor, ds)
    grants = list(session.execute(select(Grant).where(Grant.dataset_id == ds.id)).scalars())
    charged = list(
        session.execute(
            select(BudgetEntry).where(
                BudgetEntry.dataset_id == ds.id,
                BudgetEntry.kind == "charge",
                BudgetEntry.user_id == PROJECT_WIDE,
            )
        ).scalars()
    )
    if all_releases is None:
        all_releases = _releases(session)
    releases = [
        r
        for r in all_releases
        if any(d.get("id") == ds.id or d.get("name") == ds.name for d in (r.datasets or []))
    ]
    project_ids = (
        {g.project_id for g in grants} | {e.project_id for e in charged} | {r.project_id for r in releases}
    )
    if all_jobs is None:
        all_jobs = _jobs(session, project_ids)
    jobs = [j for j in all_jobs if j.project_id in project_ids and ds.name in j.reads][:JOB_SCAN]
    models = [
        m
        for m in session.execute(
            select(RegisteredModel).where(RegisteredModel.project_id.in_(sorted(project_ids)))
        ).scalars()
        if any(
            d.get("name") == ds.name for d in ((m.card or {}).get("datasets") or []) if isinstance(d, dict)
        )
    ]
    project_ids |= {j.project_id for j in jobs} | {m.project_id for m in models}
    projects = {
        p.id: p for p in session.execute(select(Project).where(Project.id.in_(sorted(project_ids)))).scalars()
    }
    orgs = dict(session.execute(select(Org.id, Org.name)).all())

    def who(pid: int) -> dict[str, Any]:
        p = projects.get(pid)
        return {
            "project_id": pid,
            "project": p.title if p else f"#{pid}",
            "organisation": orgs.get(p.org_id, "") if p and p.org_id else "",
        }

    per_month: dict[tuple[int, str], list[float]] = defaultdict(list)
    for e in charged:
        per_month[(e.project_id, _month(e.at))].append(float(e.epsilon or 0.0))
    dp = [
        {**who(pid), "month": month, "queries": len(eps), "epsilon": round(sum(eps), 6)}
        for (pid, month), eps in sorted(per_month.items(), key=lambda kv: (kv[0][1], kv[0][0]), reverse=True)
    ]
    files: dict[int, int] = defaultdict(int)
    if releases:
        for rid in session.execute(
            select(ReleaseFile.request_id).where(ReleaseFile.request_id.in_([r.id for r in releases]))
        ).scalars():
            files[rid] += 1
    used: dict[int, set[str]] = defaultdict(set)
    for e in charged:
        used[e.project_id].add("dp")
    for j in jobs:
        used[j.project_id].add("jobs")
    for m in models:
        used[m.project_id].add("models")
    return {
        "dataset": {"id": ds.id, "name": ds.name, "title": ds.title, "grade": ds.grade},
        "grants": [
            {
                **who(g.project_id),
                "since": _iso(g.granted_at),
                "channels": sorted(used.get(g.project_id, set())),
            }
            for g in sorted(grants, key=lambda g: g.granted_at or datetime.min.replace(tzinfo=UTC))
        ],
        "dp_queries": dp,
        "dp_totals": {
            "queries": len(charged),
            "epsilon": round(sum(float(e.epsilon or 0) for e in charged), 6),
        },
        "jobs": [
            {
                **who(j.project_id),
                "id": j.id,
                "name": j.name,
                "state": j.state,
                "at": _iso(j.finished_at or j.created_at),
            }
            for j in jobs[:RECENT_ITEMS]
        ],
        "jobs_total": len(jobs),
        "releases": [
            {
                **who(r.project_id),
                "id": r.id,
                "title": r.title,
                "state": r.state,
                "files": files.get(r.id, 0),
                "released_at": _iso(r.released_at),
            }
            for r in releases[:RECENT_ITEMS]
        ],
        "releases_total": len(releases),
        "models": [
            {**who(m.project_id), "id": m.id, "name": m.name, "state": m.state, "at": _iso(m.created_at)}
            for m in models[:RECENT_ITEMS]
        ],
    }


def department_usage(session: Session, actor: Principal) -> list[dict[str, Any]]:
    """One line per dataset the actor may see the usage of (a provider: their department's)."""
    q = select(Dataset).order_by(Dataset.title)
    if not (actor.is_system or actor.roles & {Role.steward, Role.admin}):
        if Role.provider not in actor.roles or actor.org_id is None:
            return []
        q = q.where(Dataset.org_id == actor.org_id)
    out = []
    every = _releases(session)
    jobs = _jobs(session, None, limit=JOB_SCAN * 10)
    for ds in session.execute(q).scalars():
        u = dataset_usage(session, actor, ds.id, all_releases=every, all_jobs=jobs)
        out.append(
            {
                **u["dataset"],
                "grants": len(u["grants"]),
                "dp_queries": u["dp_totals"]["queries"],
                "epsilon": u["dp_totals"]["epsilon"],
                "jobs": u["jobs_total"],
                "releases": u["releases_total"],
                "models": len(u["models"]),
            }
        )
    return out
