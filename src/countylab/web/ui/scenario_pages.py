"""Pages of the scenario list (场景清单), the capability list (能力清单) and their public view.

In the lab: ``/scenarios`` (filters, subscriptions), ``/scenarios/new`` (publish, or propose
one's own), ``/scenarios/{id}`` (offered datasets with grades, status moves with a reason, "申请
使用"), ``/capabilities`` (the list, the operator's 可对接 view, the publish form).  Without
login: ``/public/scenarios`` and ``/public/scenarios/{id}``, public scenarios only, no names.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from countylab.errors import NotFound, ValidationFailed
from countylab.identity.access import Principal, has_permission
from countylab.identity.roles import Permission, Role
from countylab.operations import capabilities, public, scenario_versions, subscriptions
from countylab.operations import scenarios as sv
from countylab.operations.scenarios import FIELDS, STATUS_NAMES, Offer, ScenarioInput
from countylab.operations.states import SCENARIO_TRANSITIONS, ScenarioStatus
from countylab.storage.models import Dataset, Org
from countylab.web.deps import Actor, LabDep, MaybeActor
from countylab.web.params import Id, QueryId
from countylab.web.ui.common import form_action, lang_of, render

router = APIRouter(include_in_schema=False)


def _fields(lang: str) -> list[dict[str, str]]:
    return [{"code": c, "name": sv.field_name(c, lang)} for c in FIELDS]


def _statuses(lang: str) -> list[dict[str, str]]:
    return [{"code": c, "name": sv.status_name(c, lang)} for c in STATUS_NAMES]


def _date(value: str, name: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(f"日期“{value}”无效", f"Invalid date {value!r}", field=name) from None


@router.get("/scenarios")
def scenarios_page(
    request: Request,
    actor: Actor,
    lab: LabDep,
    field: Annotated[str, Query(max_length=40)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    lang = lang_of(request)
    with lab.read() as s:
        rows = [sv.view(s, sc, lang) for sc in sv.list_scenarios(s, actor, field=field, status=status, q=q)]
        mine = subscriptions.fields_of(s, actor.user_id) if actor.user_id else []
    return render(
        request,
        "scenarios.html",
        rows=rows,
        fields=_fields(lang),
        statuses=_statuses(lang),
        field=field,
        status=status,
        q=q,
        subscribed=mine,
        can_publish=has_permission(actor, Permission.scenario_publish),
        can_propose=has_permission(actor, Permission.scenario_propose),
    )


def _form_context(s: Any, actor: Principal, lang: str, propose: bool, dataset: int | None) -> dict[str, Any]:
    departments = list(s.execute(select(Org).where(Org.kind == "department").order_by(Org.name)).scalars())
    datasets = list(s.execute(select(Dataset).order_by(Dataset.org_id, Dataset.title)).scalars())
    by_org = {o.id: o.name for o in s.execute(select(Org)).scalars()}
    broad = actor.is_system or bool(actor.roles & {Role.admin, Role.operator, Role.leader})
    return {
        "propose": propose,
        "fields": _fields(lang),
        "departments": departments
        if (broad or propose)
        else [d for d in departments if d.id == actor.org_id],
        "datasets": [
            {
                "id": d.id,
                "title": d.title,
                "name": d.name,
                "grade": d.grade,
                "department": by_org.get(d.org_id, ""),
                "columns": [str(c["name"]) for c in (d.table_schema or {}).get("columns", [])],
                "checked": d.id == dataset,
            }
            for d in datasets
        ],
        "own_org": actor.org_id,
    }


class ScenarioForm:
    """The fields the publish and the edit forms share (a FastAPI dependency of both routes)."""

    def __init__(
        self,
        title: Annotated[str, Form(max_length=200)] = "",
        problem: Annotated[str, Form(max_length=20_000)] = "",
        expected_outcome: Annotated[str, Form(max_length=20_000)] = "",
        field: Annotated[str, Form(max_length=40)] = "",
        visibility: Annotated[str, Form(max_length=10)] = "public",
        apply_from: Annotated[str, Form(max_length=10)] = "",
        apply_until: Annotated[str, Form(max_length=10)] = "",
        dataset: Annotated[list[int], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
        column: Annotated[list[str], Form()] = [],  # noqa: B006 "<dataset id>:<column>"
    ) -> None:
        self.title, self.problem, self.expected_outcome = title, problem, expected_outcome
        self.field, self.visibility = field, visibility
        self.apply_from, self.apply_until = apply_from, apply_until
        self.dataset, self.column = dataset, column

    def input(self, org_id: int | None) -> ScenarioInput:
        """The form as the service's input; a ticked column ("<dataset id>:<name>") restricts its
        dataset's offer to the ticked columns."""
        cols: dict[int, list[str]] = {}
        for item in self.column:
            ds_id, _, name = item.partition(":")
            if ds_id.isdigit():
                cols.setdefault(int(ds_id), []).append(name)
        return ScenarioInput(
            title=self.title,
            problem=self.problem,
            org_id=org_id,
            field=self.field,
            offers=tuple(
                Offer(d, tuple(cols[d]) if d in cols else None) for d in dict.fromkeys(self.dataset)
            ),
            expected_outcome=self.expected_outcome,
            apply_from=_date(self.apply_from, "apply_from"),
            apply_until=_date(self.apply_until, "apply_until"),
            visibility=self.visibility,
        )


Fields = Annotated[ScenarioForm, Depends()]


@router.get("/scenarios/new")
def new_scenario_page(
    request: Request, actor: Actor, lab: LabDep, propose: bool = False, dataset: QueryId = None
) -> Response:
    lang = lang_of(request)
    if not propose and not has_permission(actor, Permission.scenario_publish):
        propose = True
    with lab.read() as s:
        ctx = _form_context(s, actor, lang, propose, dataset)
    return render(request, "scenario_form.html", **ctx)


@router.post("/scenarios")
def create_scenario(
    request: Request,
    actor: Actor,
    lab: LabDep,
    form: Fields,
    org_id: Annotated[str, Form(max_length=12)] = "",
    propose: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    """Publish (or, with ``propose=1``, propose) a scenario; columns ticked restrict a dataset."""
    made: dict[str, int] = {}

    def run() -> None:
        data = form.input(int(org_id) if org_id.isdigit() else None)
        with lab.tx() as s:
            sc = sv.propose(s, actor, data) if propose else sv.publish(s, actor, data)
            made["id"] = sc.id

    back = "/scenarios/new?propose=1" if propose else "/scenarios/new"
    response = form_action(request, back, run, "scn.flash.proposed" if propose else "scn.flash.published")
    if "id" in made:
        response.headers["location"] = f"/scenarios/{made['id']}"
    return response


@router.get("/scenarios/{scenario_id}")
def scenario_page(request: Request, scenario_id: Id, actor: Actor, lab: LabDep) -> Response:
    lang = lang_of(request)
    with lab.read() as s:
        sc = sv.get(s, actor, scenario_id)
        view = sv.view(s, sc, lang)
        manage = sv._may_manage(actor, sc)
        operator = actor.is_system or bool(actor.roles & {Role.operator, Role.admin})
        today = lab.clock().date()
        is_open = sv.is_open(sc, today)
        can_edit = scenario_versions.may_edit(actor, sc)
        history = scenario_versions.view_versions(s, sc.id)
    moves = [
        {"code": m.value, "name": sv.status_name(m.value, lang)}
        for m in sorted(SCENARIO_TRANSITIONS[ScenarioStatus(str(view["status"]))])
    ]
    if view["status"] == ScenarioStatus.proposed:
        moves = moves if operator else []
    elif not manage:
        moves = []
    return render(
        request,
        "scenario.html",
        sc=view,
        moves=moves,
        is_open=is_open,
        can_edit=can_edit,
        history=history,
        can_apply=has_permission(actor, Permission.application_submit) and view["status"] != "rejected",
    )


@router.get("/scenarios/{scenario_id}/edit")
def edit_scenario_page(request: Request, scenario_id: Id, actor: Actor, lab: LabDep) -> Response:
    """The edit form of a published scenario, filled with its current text and offer."""
    lang = lang_of(request)
    with lab.read() as s:
        sc = sv.get(s, actor, scenario_id)
        view = sv.view(s, sc, lang)
        ctx = _form_context(s, actor, lang, False, None)
    offered = {int(d["dataset_id"]): d["columns"] for d in view["datasets"]}  # type: ignore[attr-defined]
    for d in ctx["datasets"]:
        d["checked"] = d["id"] in offered
        d["ticked"] = set(offered.get(d["id"]) or [])
    return render(request, "scenario_edit.html", sc=view, **ctx)


@router.post("/scenarios/{scenario_id}/edit")
def edit_scenario(
    request: Request,
    scenario_id: Id,
    actor: Actor,
    lab: LabDep,
    form: Fields,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Save an edit of a published scenario (a new version, with the reason); a refusal goes back
    to the form with the message, a saved edit to the scenario's page."""
    saved: list[bool] = []

    def run() -> None:
        data = form.input(None)
        with lab.tx() as s:
            scenario_versions.edit(s, actor, scenario_id, data, reason)
        saved.append(True)

    response = form_action(request, f"/scenarios/{scenario_id}/edit", run, "scn.flash.edited")
    if saved:
        response.headers["location"] = f"/scenarios/{scenario_id}"
    return response


@router.post("/scenarios/{scenario_id}/status")
def scenario_status(
    request: Request,
    scenario_id: Id,
    actor: Actor,
    lab: LabDep,
    status: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Move a scenario (accept and decline a proposal, too), with a reason."""

    def run() -> None:
        with lab.tx() as s:
            sv.change_status(s, actor, scenario_id, status, reason)

    return form_action(request, f"/scenarios/{scenario_id}", run, "scn.flash.status")


@router.post("/scenarios/subscriptions")
def set_subscriptions(
    request: Request,
    actor: Actor,
    lab: LabDep,
    field: Annotated[list[str], Form()] = [],  # noqa: B006
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            subscriptions.subscribe(s, actor, [f for f in field if len(f) <= 40])

    return form_action(request, "/scenarios", run, "scn.flash.subscribed")


@router.get("/capabilities")
def capabilities_page(
    request: Request, actor: Actor, lab: LabDep, field: Annotated[str, Query(max_length=40)] = ""
) -> Response:
    lang = lang_of(request)
    operator = actor.is_system or bool(actor.roles & {Role.operator, Role.admin, Role.leader})
    with lab.read() as s:
        rows = [capabilities.view(s, c, lang) for c in capabilities.list_capabilities(s, field=field)]
        pairs = [
            {
                "field": p.field,
                "field_name": sv.field_name(p.field, lang),
                "scenarios": [sv.view(s, sc, lang) for sc in p.scenarios],
                "capabilities": [capabilities.view(s, c, lang) for c in p.capabilities],
            }
            for p in (capabilities.pairings(s, actor) if operator else [])
        ]
        orgs = list(
            s.execute(
                select(Org).where(Org.kind.in_(["enterprise", "research"])).order_by(Org.name)
            ).scalars()
        )
    return render(
        request,
        "capabilities.html",
        rows=rows,
        pairs=pairs,
        fields=_fields(lang),
        field=field,
        can_publish=has_permission(actor, Permission.capability_publish),
        orgs=orgs if operator else [],
    )


@router.post("/capabilities")
def publish_capability(
    request: Request,
    actor: Actor,
    lab: LabDep,
    title: Annotated[str, Form(max_length=200)] = "",
    description: Annotated[str, Form(max_length=20_000)] = "",
    field: Annotated[str, Form(max_length=40)] = "",
    org_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            capabilities.publish(
                s,
                actor,
                title=title,
                description=description,
                field=field,
                org_id=int(org_id) if org_id.isdigit() else None,
            )

    return form_action(request, "/capabilities", run, "scn.flash.capability")


# -- public, no login ---------------------------------------------------------------------------


@router.get("/public/scenarios")
def public_scenarios_page(
    request: Request,
    principal: MaybeActor,
    lab: LabDep,
    field: Annotated[str, Query(max_length=40)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    lang = lang_of(request)
    with lab.read() as s:
        rows = public.public_scenarios(s, field=field, status=status, q=q, lang=lang)
    return render(
        request,
        "public/scenarios.html",
        rows=rows,
        fields=_fields(lang),
        statuses=[x for x in _statuses(lang) if x["code"] in {p.value for p in public.PUBLIC_STATUSES}],
        field=field,
        status=status,
        q=q,
    )


@router.get("/public/scenarios/{scenario_id}")
def public_scenario_page(request: Request, scenario_id: Id, principal: MaybeActor, lab: LabDep) -> Response:
    lang = lang_of(request)
    with lab.read() as s:
        found = public.public_scenario(s, scenario_id, lang=lang)
    if found is None:
        raise NotFound(f"场景 #{scenario_id} 不存在或未公开", f"Scenario #{scenario_id} is not public")
    return render(request, "public/scenario.html", sc=found)
