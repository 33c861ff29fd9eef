"""Read-only views of the gateway: query history, budgets and the tables a project can query.

Who sees what: a project's members (and oversight roles) see that project's queries and
budget ledger; the steward and admins (``query.history``) see every project's queries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.catalog import service as catalog
from countylab.catalog.grading import Grade
from countylab.errors import NotFound
from countylab.identity import projects as prj
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.policy import Action, decide
from countylab.privacy import budget
from countylab.privacy.tables import column_kind
from countylab.storage.models import Dataset, Project, utcnow
from countylab.storage.privacy_models import QueryRun


def run_view(r: QueryRun, slug: str = "") -> dict[str, Any]:
    return {
        "id": r.id,
        "project_id": r.project_id,
        "project": slug,
        "user_id": r.user_id,
        "username": r.username,
        "sql": r.sql,
        "mode": r.mode,
        "epsilon": r.epsilon,
        "delta": r.delta,
        "epsilon_spent": r.epsilon_spent,
        "delta_spent": r.delta_spent,
        "datasets": list(r.datasets or []),
        "status": r.status,
        "cached": r.cached,
        "rows": r.rows,
        "suppressed": r.suppressed,
        "error": r.error,
        "created_at": r.created_at.isoformat() if r.created_at else None,
    }


def history(
    session: Session, actor: Principal, *, project_id: int | None = None, mine: bool = False, limit: int = 100
) -> list[dict[str, Any]]:
    """Queries, newest first: of one project (members, oversight) or of all (``query.history``)."""
    q = select(QueryRun, Project.slug).join(Project, Project.id == QueryRun.project_id)
    if project_id is None:
        authorize(actor, Permission.query_history, target="queries")
    else:
        prj.get_project(session, actor, project_id)
        q = q.where(QueryRun.project_id == project_id)
    if mine:
        q = q.where(QueryRun.user_id == actor.user_id)
    rows = session.execute(q.order_by(QueryRun.id.desc()).limit(max(1, min(limit, 1000)))).all()
    return [run_view(r, slug) for r, slug in rows]


def granted(session: Session, project_id: int) -> list[Dataset]:
    return sorted((g.dataset for g in prj.project_grants(session, project_id)), key=lambda d: d.name)


def budget_view(session: Session, actor: Principal, project_id: int, period: str = "month") -> dict[str, Any]:
    """Every ledger of the project (project-wide and per analyst, with its renewal period), the
    datasets' yearly ledgers across all projects, top-up requests and recent entries."""
    from countylab.privacy import ledgers, topups

    project = prj.get_project(session, actor, project_id)
    datasets = granted(session, project.id)
    years = []
    for ds in datasets:
        caps = budget.grade_limits(ds)
        years.append(ledgers.dataset_year_view(session, ds, caps.epsilon_per_year, caps.delta_per_year))
    start, end = ledgers.period_bounds(utcnow(), period)
    return {
        "project_id": project.id,
        "project": project.slug,
        "period": period,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "renews_at": end.isoformat(),
        "budgets": [b.to_json() for b in budget.balances_for(session, project.id, datasets, period=period)],
        "datasets_year": years,
        "topups": topups.list_topups(session, actor, project_id=project.id),
        "entries": budget.entries(session, project.id),
    }


def _external(project: Project) -> bool:
    return project.org is None or project.org.kind != "department"


def console_tables(
    session: Session, actor: Principal, project_id: int, lang: str = "zh-CN"
) -> list[dict[str, Any]]:
    """What the analyst may query: granted datasets with columns, bounds, key sets and policy."""
    project = prj.get_project(session, actor, project_id)
    key_sets = catalog.key_sets(session)
    out = []
    for ds in granted(session, project.id):
        grade, overrides = Grade(ds.grade), budget.dataset_policy(ds)
        dp = decide(grade, Action.dp_query, overrides=overrides, external=_external(project))
        unit = ds.privacy_unit_column if ds.privacy_unit != "none" else None
        cols = []
        for c in catalog.columns(session, ds.id):
            kind = column_kind(c, c.name == unit)
            ks = key_sets.get(c.key_set or "")
            cols.append(
                {
                    "name": c.name,
                    "type": c.type,
                    "title": c.title,
                    "kind": kind.value,
                    "lower": c.lower,
                    "upper": c.upper,
                    "unit": c.name == unit,
                    "key_set": c.key_set if ks is not None else None,
                    "key_count": len(ks.values or []) if ks else 0,
                    "joinable_to": list(c.joinable_to or []),
                }
            )
        out.append(
            {
                "id": ds.id,
                "name": ds.name,
                "title": ds.title,
                "grade": ds.grade,
                "privacy_unit": unit,
                "max_rows_per_unit": ds.dp_max_rows_per_unit,
                "current_version": ds.current_version,
                "dp_allowed": dp.allowed,
                "dp_reason": dp.reason(lang),
                "min_epsilon": budget.grade_limits(ds).min_epsilon,
                "queries_per_day": budget.grade_limits(ds).queries_per_day,
                "default_delta": budget.grade_limits(ds).default_delta,
                "columns": cols,
            }
        )
    return out


def member_projects(session: Session, actor: Principal) -> list[Project]:
    """Projects the actor may query (member of); stewards browsing see all they may read."""
    return [
        p for p in prj.visible_projects(session, actor) if p.id in actor.project_ids or not actor.project_ids
    ]


def get_run(session: Session, actor: Principal, query_id: int) -> QueryRun:
    run = session.get(QueryRun, query_id)
    if run is None:
        raise NotFound("查询不存在", "Query not found", query_id=query_id)
    prj.get_project(session, actor, run.project_id)
    return run
