"""API: the DP SQL gateway (数据黑匣) — queries, privacy budgets, query history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from countylab.privacy import budget, history
from countylab.privacy.gateway import QueryRequest
from countylab.privacy.wiring import gateway_of
from countylab.web.deps import Actor, LabDep

router = APIRouter(prefix="/api", tags=["query"])


class QueryIn(BaseModel):
    sql: str = Field(max_length=20_000)
    project_id: int
    epsilon: float | None = None
    delta: float | None = None
    mode: str = "dp"  # dp | sdc
    versions: dict[str, int] = Field(default_factory=dict)  # {"residents": 2}, like FROM residents AS OF 2


@router.post("/query")
def run_query(body: QueryIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Run a DP (or, on 一般1–2级 data, SDC) query; ε is charged before the answer exists."""
    req = QueryRequest(
        sql=body.sql,
        project_id=body.project_id,
        epsilon=body.epsilon,
        delta=body.delta,
        mode=body.mode,
        versions=body.versions,
    )
    return gateway_of(lab).run(actor, req).to_json()


@router.get("/projects/{project_id}/query-tables")
def query_tables(project_id: int, actor: Actor, lab: LabDep, lang: str = "zh-CN") -> dict[str, Any]:
    """Granted datasets as SQL tables: columns, steward bounds, public key sets, what the grade allows."""
    with lab.tx() as s:
        return {"items": history.console_tables(s, actor, project_id, lang)}


@router.get("/projects/{project_id}/budget")
def project_budget(project_id: int, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """The project's privacy budget ledgers (project-wide and per analyst) and their history."""
    with lab.tx() as s:
        return history.budget_view(s, actor, project_id)


class BudgetIn(BaseModel):
    epsilon: float | None = None  # null: the grade's cap
    delta: float | None = None
    user_id: int | None = None  # set one analyst's ledger instead of the project's


@router.put("/projects/{project_id}/budgets/{dataset_id}")
def set_budget(project_id: int, dataset_id: int, body: BudgetIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Security officer: set a project's (or an analyst's) budget on a dataset, within the grade's caps."""
    with lab.tx() as s:
        return budget.set_limit(
            s, actor, project_id, dataset_id, epsilon=body.epsilon, delta=body.delta, user_id=body.user_id
        ).to_json()


@router.get("/projects/{project_id}/queries")
def project_queries(
    project_id: int, actor: Actor, lab: LabDep, mine: bool = False, limit: int = 100
) -> dict[str, Any]:
    with lab.tx() as s:
        return {"items": history.history(s, actor, project_id=project_id, mine=mine, limit=limit)}


@router.get("/queries")
def all_queries(actor: Actor, lab: LabDep, limit: int = 200) -> dict[str, Any]:
    """Security officer / admin: the query history of every project."""
    with lab.tx() as s:
        return {"items": history.history(s, actor, limit=limit)}
