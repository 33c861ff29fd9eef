"""API: the DP SQL gateway (数据黑匣) — queries, privacy budgets, top-ups, query history.

Every integer in a path, query string or body is bounded to int64 here, so an id like 2**70
is a 422 and never reaches the database (where it would be a 5xx).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from countylab import export
from countylab.i18n import translator
from countylab.privacy import budget, history, present, topups
from countylab.privacy.gateway import QueryRequest
from countylab.privacy.params import MAX_SQL
from countylab.web import params
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id, Limit

if TYPE_CHECKING:
    from countylab.lab import Lab

router = APIRouter(prefix="/api", tags=["query"])

BodyId = Annotated[params.BodyId, Field(strict=True)]  # "5", 5.0 and true are not ids
Number = Annotated[float, Field(strict=True)]  # "0.5" and true are not numbers


def _period(lab: Lab) -> str:
    return lab.settings.dp_budget_period


class QueryIn(BaseModel):
    sql: str = Field(max_length=MAX_SQL)
    project_id: BodyId
    epsilon: Number | None = None
    delta: Number | None = None
    mode: str = Field(default="dp", max_length=10)  # only "dp": exact tables go through the airlock
    versions: dict[Annotated[str, Field(max_length=128)], BodyId] = Field(default_factory=dict)
    confirm_delta: bool = True  # false: a query that would spend δ answers 409 (reason confirm_delta)


def _lang(request: Request) -> str:
    return str(getattr(request.state, "lang", "zh-CN"))


@router.post("/query")
def run_query(body: QueryIn, request: Request, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Run a DP query; ε and δ are checked against each grade and charged before the answer exists.

    ``rows`` and ``intervals`` are the released values, unrounded.  ``display`` is a view of the
    same answer for people (readable headers, key-set names beside codes, values rounded to
    their interval), built afterwards from public metadata at no privacy cost."""
    req = QueryRequest(
        sql=body.sql,
        project_id=body.project_id,
        epsilon=body.epsilon,
        delta=body.delta,
        mode=body.mode,
        versions=body.versions,
        confirm_delta=body.confirm_delta,
    )
    return answer_view(lab, lab.gateway.run(actor, req).to_json(), body.sql, _lang(request))


def answer_view(lab: Lab, answer: dict[str, Any], sql: str, lang: str) -> dict[str, Any]:
    """The answer with its ``display`` block (post-processing; reads public metadata only)."""
    with lab.read() as s:
        meta = present.load_meta(s, list(answer.get("datasets") or []))
    return {**answer, "display": present.display(answer, sql, meta, lang)}


@router.get("/queries/{query_id}/answer.{fmt}")
def export_answer(
    query_id: Id, fmt: Literal["csv", "xlsx"], request: Request, actor: Actor, lab: LabDep
) -> Response:
    """A stored answer as CSV (UTF-8 BOM) or XLSX with the DP note; project members, no budget cost.

    Headers, names and rounding as in ``display``; each measure is followed by its interval's
    bounds.  The XLSX notes block says the ε spent, the interval level and how values were rounded."""
    lang = _lang(request)
    with lab.read() as s:
        run, answer = present.stored_answer(s, actor, query_id)
        meta = present.load_meta(s, list(answer.get("datasets") or []))
    answer = {**answer, "epsilon_spent": run.epsilon_spent, "delta_spent": run.delta_spent}
    shown = present.display(answer, run.sql, meta, lang)
    table = present.answer_table(answer, shown, lang)
    t = translator(lang)
    name = t("answers.file_name", query_id=query_id)
    if fmt == "csv":
        body, media = export.table_to_csv(table), "text/csv; charset=utf-8"
    else:
        body = export.table_to_xlsx(
            table,
            sheet=t("answers.sheet"),
            title=t("answers.file_title", query_id=query_id),
            notes=[f"SQL: {run.sql}", *present.note_lines(answer, lang)],
        )
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    disposition = export.content_disposition(f"{name}.{fmt}")
    return Response(body, media_type=media, headers={"Content-Disposition": disposition})


@router.get("/projects/{project_id}/query-tables")
def query_tables(project_id: Id, actor: Actor, lab: LabDep, lang: str = "zh-CN") -> dict[str, Any]:
    """Granted datasets as SQL tables: columns, steward bounds, public key sets, what the grade allows."""
    with lab.read() as s:
        return {"items": history.console_tables(s, actor, project_id, lang)}


@router.get("/projects/{project_id}/budget")
def project_budget(project_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """The project's privacy budget ledgers with their renewal period, the datasets' yearly
    ledgers across all projects, top-up requests and the ledger history."""
    with lab.read() as s:
        return history.budget_view(s, actor, project_id, period=_period(lab))


class BudgetIn(BaseModel):
    epsilon: Number | None = None  # null: the grade's cap
    delta: Number | None = None
    user_id: BodyId | None = None  # set one analyst's ledger instead of the project's


@router.put("/projects/{project_id}/budgets/{dataset_id}")
def set_budget(project_id: Id, dataset_id: Id, body: BudgetIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Security officer: set a project's (or an analyst's) budget on a dataset, within the grade's caps."""
    with lab.tx() as s:
        return budget.set_limit(
            s,
            actor,
            project_id,
            dataset_id,
            epsilon=body.epsilon,
            delta=body.delta,
            user_id=body.user_id,
            period=_period(lab),
        ).to_json()


class TopupIn(BaseModel):
    dataset_id: BodyId
    epsilon: Number
    delta: Number = 0.0
    reason: str = Field(max_length=topups.MAX_REASON)


@router.post("/projects/{project_id}/budget-topups")
def request_topup(project_id: Id, body: TopupIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """A project member asks the security officer for more budget this period."""
    with lab.tx() as s:
        return topups.request_topup(
            s,
            actor,
            project_id,
            body.dataset_id,
            epsilon=body.epsilon,
            delta=body.delta,
            reason=body.reason,
        )


@router.get("/projects/{project_id}/budget-topups")
def project_topups(project_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        return {"items": topups.list_topups(s, actor, project_id=project_id)}


@router.get("/budget-topups")
def all_topups(
    actor: Actor, lab: LabDep, status: Annotated[str | None, Query(max_length=10)] = None
) -> dict[str, Any]:
    """Security officer: top-up requests of every project (``status=pending`` for the queue)."""
    with lab.read() as s:
        return {"items": topups.list_topups(s, actor, status=status)}


class DecisionIn(BaseModel):
    approve: bool
    note: str = Field(default="", max_length=topups.MAX_REASON)


@router.post("/budget-topups/{topup_id}/decision")
def decide_topup(topup_id: Id, body: DecisionIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Security officer: approve (the project's ledgers grow for this period) or refuse."""
    with lab.tx() as s:
        return topups.decide_topup(
            s, actor, topup_id, approve=body.approve, note=body.note, period=_period(lab)
        )


@router.get("/projects/{project_id}/queries")
def project_queries(
    project_id: Id,
    actor: Actor,
    lab: LabDep,
    mine: bool = False,
    limit: Limit = 100,
) -> dict[str, Any]:
    with lab.read() as s:
        return {"items": history.history(s, actor, project_id=project_id, mine=mine, limit=limit)}


@router.get("/queries")
def all_queries(actor: Actor, lab: LabDep, limit: Limit = 200) -> dict[str, Any]:
    """Security officer / admin: the query history of every project."""
    with lab.read() as s:
        return {"items": history.history(s, actor, limit=limit)}
