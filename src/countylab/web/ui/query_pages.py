"""Pages of the data black box: the query console (``/query``) and every project's query history.

The console works without JavaScript (the form posts here and the page shows the answer);
``/static/query.js`` upgrades it to post to ``/api/query`` and update the page in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from countylab.errors import CountylabError, PermissionDenied, ValidationFailed
from countylab.identity.access import Principal, has_permission
from countylab.identity.roles import Permission
from countylab.privacy import budget, history, topups
from countylab.privacy.gateway import QueryRequest
from countylab.web.api.query import answer_view
from countylab.web.deps import Actor, LabDep
from countylab.web.params import FormId, Id, QueryId
from countylab.web.ui.common import flash_redirect, form_action, lang_of, render

if TYPE_CHECKING:
    from countylab.lab import Lab

router = APIRouter(include_in_schema=False)

EPSILONS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
EXAMPLE_SQL = "SELECT town_code, COUNT(*) FROM residents\nWHERE age > 80 AND lives_alone\nGROUP BY town_code"


def _console(
    request: Request,
    actor: Principal,
    lab: Lab,
    project_id: int | None,
    *,
    sql: str = "",
    epsilon: float = 0.5,
    answer: dict[str, Any] | None = None,
    confirm: dict[str, Any] | None = None,
) -> Response:
    period = lab.settings.dp_budget_period
    with lab.read() as s:
        projects = history.member_projects(s, actor)
        ids = [p.id for p in projects]
        pid = project_id if project_id in ids else (ids[0] if ids else None)
        ctx: dict[str, Any] = {
            "projects": projects,
            "project_id": pid,
            "tables": [],
            "budgets": [],
            "runs": [],
            "years": [],
            "topups": [],
            "period_info": None,
        }
        if pid is not None:
            ctx["tables"] = history.console_tables(s, actor, pid, lang_of(request))
            view = history.budget_view(s, actor, pid, period=period)
            ctx["budgets"] = view["budgets"]
            ctx["years"] = view["datasets_year"]
            ctx["topups"] = view["topups"]
            ctx["period_info"] = {k: view[k] for k in ("period", "period_start", "period_end")}
            ctx["runs"] = history.history(s, actor, project_id=pid, mine=pid in actor.project_ids, limit=30)
            ctx["members"] = [
                (m.user_id, m.user.username) for p in projects if p.id == pid for m in p.members
            ]
    return render(
        request,
        "query.html",
        **ctx,
        sql=sql or EXAMPLE_SQL,
        epsilon=epsilon,
        epsilons=EPSILONS,
        answer=answer,
        confirm=confirm,
        can_run=pid in actor.project_ids,
        can_set_budget=has_permission(actor, Permission.budget_manage),
        can_decide=topups.can_decide(actor),
        can_see_all=has_permission(actor, Permission.query_history),
    )


@router.get("/query")
def console_page(
    request: Request,
    actor: Actor,
    lab: LabDep,
    project_id: QueryId = None,
) -> Response:
    return _console(request, actor, lab, project_id)


@router.post("/query")
def run_from_form(
    request: Request,
    actor: Actor,
    lab: LabDep,
    sql: Annotated[str, Form()],
    project_id: FormId,
    epsilon: Annotated[str, Form()] = "0.5",
    confirm_delta: Annotated[str, Form()] = "",
) -> Response:
    """Without JavaScript: run the query and show the console with the answer.

    A query that would spend δ first comes back with a confirmation step (the same form with
    ``confirm_delta``).  A reload posts again, which is free: the identical query gets its
    cached answer."""
    try:
        eps = float(epsilon)
    except ValueError:
        eps = float("nan")
    try:
        answer = lab.gateway.run(
            actor,
            QueryRequest(sql=sql, project_id=project_id, epsilon=eps, confirm_delta=confirm_delta == "1"),
        )
    except CountylabError as exc:
        if exc.details.get("reason") == "confirm_delta":
            confirm = {"message": exc.message(lang_of(request)), **exc.details}
            return _console(request, actor, lab, project_id, sql=sql, epsilon=eps, confirm=confirm)
        if isinstance(exc, PermissionDenied):
            lab.record_denial(actor, exc, method=request.method, path=request.url.path)
        return flash_redirect(f"/query?project_id={project_id}", exc.message(lang_of(request)), "error")
    shown = answer_view(lab, answer.to_json(), sql, lang_of(request))
    return _console(request, actor, lab, project_id, sql=sql, epsilon=eps, answer=shown)


@router.post("/query/budgets")
def set_budget_from_form(
    request: Request,
    actor: Actor,
    lab: LabDep,
    project_id: FormId,
    dataset_id: FormId,
    epsilon: Annotated[str, Form()] = "",
    delta: Annotated[str, Form()] = "",
    user_id: Annotated[str, Form()] = "",
) -> Response:
    def act() -> None:
        try:
            eps = float(epsilon) if epsilon.strip() else None
            dlt = float(delta) if delta.strip() else None
        except ValueError:
            raise ValidationFailed("请输入数字", "enter numbers", field="epsilon") from None
        with lab.tx() as s:
            budget.set_limit(
                s,
                actor,
                project_id,
                dataset_id,
                epsilon=eps,
                delta=dlt,
                user_id=int(user_id) if user_id.isdigit() and len(user_id) < 19 else None,
                period=lab.settings.dp_budget_period,
            )

    return form_action(request, f"/query?project_id={project_id}", act, "query.budget_saved")


@router.post("/query/topups")
def request_topup_from_form(
    request: Request,
    actor: Actor,
    lab: LabDep,
    project_id: FormId,
    dataset_id: FormId,
    epsilon: Annotated[str, Form()] = "",
    reason: Annotated[str, Form(max_length=topups.MAX_REASON)] = "",
) -> Response:
    """A project member asks the security officer for more budget this period."""

    def act() -> None:
        try:
            eps = float(epsilon)
        except ValueError:
            raise ValidationFailed("请输入数字", "enter a number", field="epsilon") from None
        with lab.tx() as s:
            topups.request_topup(s, actor, project_id, dataset_id, epsilon=eps, reason=reason)

    return form_action(request, f"/query?project_id={project_id}", act, "query.topup_requested")


@router.post("/query/topups/{topup_id}/decision")
def decide_topup_from_form(
    request: Request,
    actor: Actor,
    lab: LabDep,
    topup_id: Id,
    project_id: FormId,
    decision: Annotated[str, Form()] = "",
    note: Annotated[str, Form(max_length=topups.MAX_REASON)] = "",
) -> Response:
    """Security officer: approve or refuse a top-up request from the budget card."""

    def act() -> None:
        if decision not in ("approve", "refuse"):
            raise ValidationFailed("请选择批准或拒绝", "choose approve or refuse", field="decision")
        with lab.tx() as s:
            topups.decide_topup(
                s,
                actor,
                topup_id,
                approve=decision == "approve",
                note=note,
                period=lab.settings.dp_budget_period,
            )

    return form_action(request, f"/query?project_id={project_id}", act, "query.topup_decided")


@router.get("/query/history")
def all_history_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        runs = history.history(s, actor, limit=500)
        pending = topups.list_topups(s, actor, status="pending") if topups.can_decide(actor) else []
    return render(request, "query_history.html", runs=runs, topups=pending)
