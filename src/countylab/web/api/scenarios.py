"""API: the scenario list (场景清单), proposals, status moves, subscriptions and the capability
list (能力清单).  Thin: each route parses, calls one service function and formats."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from countylab.operations import capabilities, scenario_versions, subscriptions
from countylab.operations import scenarios as sv
from countylab.operations.scenarios import FIELDS, Offer, ScenarioInput
from countylab.web.deps import Actor, LabDep
from countylab.web.params import BodyId, Id, QueryId

router = APIRouter(prefix="/api", tags=["scenarios"])


def _lang(request: Request) -> str:
    return str(getattr(request.state, "lang", "zh-CN"))


class OfferIn(BaseModel):
    dataset_id: BodyId
    columns: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=500)
    note: str = Field(default="", max_length=1000)


class ScenarioIn(BaseModel):
    title: str = Field(max_length=200)
    problem: str = Field(max_length=20_000)
    org_id: BodyId | None = None
    field: str = Field(max_length=40)
    datasets: list[OfferIn] = Field(max_length=100)
    expected_outcome: str = Field(default="", max_length=20_000)
    apply_from: date | None = None
    apply_until: date | None = None
    visibility: str = Field(default="public", max_length=10)

    def to_input(self) -> ScenarioInput:
        return ScenarioInput(
            title=self.title,
            problem=self.problem,
            org_id=self.org_id,
            field=self.field,
            offers=tuple(
                Offer(o.dataset_id, tuple(o.columns) if o.columns is not None else None, o.note)
                for o in self.datasets
            ),
            expected_outcome=self.expected_outcome,
            apply_from=self.apply_from,
            apply_until=self.apply_until,
            visibility=self.visibility,
        )


class ScenarioEditIn(ScenarioIn):
    """The scenario's new text and offer (the owning department stays) and why it changed."""

    reason: str = Field(max_length=2000)


class ReasonIn(BaseModel):
    reason: str = Field(default="", max_length=2000)


class StatusIn(BaseModel):
    status: str = Field(max_length=20)
    reason: str = Field(max_length=2000)


class SubscriptionsIn(BaseModel):
    fields: list[Annotated[str, Field(max_length=40)]] = Field(max_length=50)


class CapabilityIn(BaseModel):
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=20_000)
    field: str = Field(max_length=40)
    org_id: BodyId | None = None


@router.get("/scenario-fields")
def list_fields(request: Request, actor: Actor) -> dict[str, Any]:
    """The fixed list of fields (领域) with their names."""
    lang = _lang(request)
    return {"items": [{"code": c, "name": sv.field_name(c, lang)} for c in FIELDS]}


@router.get("/scenarios")
def list_scenarios(
    request: Request,
    actor: Actor,
    lab: LabDep,
    field: Annotated[str, Query(max_length=40)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
    dataset: QueryId = None,
) -> dict[str, Any]:
    """The scenarios the caller may see (public, internal to the domain, own proposals)."""
    lang = _lang(request)
    with lab.read() as s:
        found = sv.list_scenarios(s, actor, field=field, status=status, q=q, dataset_id=dataset)
        return {"items": [sv.view(s, sc, lang) for sc in found]}


@router.get("/scenarios/{scenario_id}")
def get_scenario(request: Request, scenario_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        return sv.view(s, sv.get(s, actor, scenario_id), _lang(request))


@router.post("/scenarios", status_code=201)
def publish(request: Request, body: ScenarioIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Publish a scenario (征集中); subscribers of its field are notified."""
    with lab.tx() as s:
        return sv.view(s, sv.publish(s, actor, body.to_input()), _lang(request))


@router.put("/scenarios/{scenario_id}")
def edit(
    request: Request, scenario_id: Id, body: ScenarioEditIn, actor: Actor, lab: LabDep
) -> dict[str, Any]:
    """Edit a published scenario's text and offer: a new version with the reason; subscribers
    are notified; applications already submitted keep the offer they were submitted under."""
    with lab.tx() as s:
        sc = scenario_versions.edit(s, actor, scenario_id, body.to_input(), body.reason)
        return sv.view(s, sc, _lang(request))


@router.get("/scenarios/{scenario_id}/versions")
def versions(scenario_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """The versions of a scenario, newest first: who changed it, when and why."""
    with lab.read() as s:
        sc = sv.get(s, actor, scenario_id)
        return {"items": scenario_versions.view_versions(s, sc.id)}


@router.post("/scenarios/propose", status_code=201)
def propose(request: Request, body: ScenarioIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """A developer's own scenario, ``proposed`` until the operator accepts it."""
    with lab.tx() as s:
        return sv.view(s, sv.propose(s, actor, body.to_input()), _lang(request))


@router.post("/scenarios/{scenario_id}/accept")
def accept(request: Request, scenario_id: Id, body: ReasonIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        return sv.view(s, sv.accept(s, actor, scenario_id, body.reason), _lang(request))


@router.post("/scenarios/{scenario_id}/decline")
def decline(request: Request, scenario_id: Id, body: ReasonIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        return sv.view(s, sv.decline(s, actor, scenario_id, body.reason), _lang(request))


@router.post("/scenarios/{scenario_id}/status")
def change_status(
    request: Request, scenario_id: Id, body: StatusIn, actor: Actor, lab: LabDep
) -> dict[str, Any]:
    """征集中 → 已对接 → 实施中 → 已完成 / 已关闭, each with a reason."""
    with lab.tx() as s:
        return sv.view(s, sv.change_status(s, actor, scenario_id, body.status, body.reason), _lang(request))


@router.get("/me/scenario-subscriptions")
def my_subscriptions(actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        return {"fields": subscriptions.fields_of(s, actor.user_id) if actor.user_id else []}


@router.put("/me/scenario-subscriptions")
def set_subscriptions(body: SubscriptionsIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Subscribe to exactly these fields (``""``: every field; empty list: none)."""
    with lab.tx() as s:
        return {"fields": subscriptions.subscribe(s, actor, body.fields)}


@router.get("/capabilities")
def list_capabilities(
    request: Request, actor: Actor, lab: LabDep, field: Annotated[str, Query(max_length=40)] = ""
) -> dict[str, Any]:
    lang = _lang(request)
    with lab.read() as s:
        return {
            "items": [capabilities.view(s, c, lang) for c in capabilities.list_capabilities(s, field=field)]
        }


@router.post("/capabilities", status_code=201)
def publish_capability(request: Request, body: CapabilityIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        cap = capabilities.publish(
            s, actor, title=body.title, description=body.description, field=body.field, org_id=body.org_id
        )
        return capabilities.view(s, cap, _lang(request))


@router.get("/capabilities/pairings")
def pairings(request: Request, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """可对接: per field, open scenarios (demand) beside capabilities (supply)."""
    lang = _lang(request)
    with lab.read() as s:
        return {
            "items": [
                {
                    "field": p.field,
                    "field_name": sv.field_name(p.field, lang),
                    "scenarios": [sv.view(s, sc, lang) for sc in p.scenarios],
                    "capabilities": [capabilities.view(s, c, lang) for c in p.capabilities],
                }
                for p in capabilities.pairings(s, actor)
            ]
        }
