"""Pages of dashboards (数据看板), the showcase's DP metrics, publication approval and the big screen.

In the lab: ``/dashboards`` (list, new dashboard, the showcase metrics with their budget state),
``/dashboards/{id}`` (the charts and the approval record: every number that will appear),
``/dashboards/{id}/edit`` (widgets from open data, released tables or DP metrics), ``/bigscreen``
(configurations) and ``/bigscreen/{id}`` (the 1920×1080 lobby screen).  Public, without login:
``/public/dashboards`` and ``/public/dashboards/{slug}``, drawn from the cached charts only.
Forms post here and come back (PRG); ``static/dashboard.js`` draws the charts.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from countylab.errors import NotFound, ValidationFailed
from countylab.i18n import translator
from countylab.identity.access import authorize, has_permission
from countylab.identity.roles import Permission
from countylab.showcase import bigscreen, dashboards, metrics, publication
from countylab.showcase.widgets import AGGREGATES, KINDS, OPEN_GRADE, WidgetSpec
from countylab.storage.airlock_models import ReleaseFile, ReleaseRequest
from countylab.storage.models import Dataset
from countylab.web.api.dashboards import PUBLIC
from countylab.web.deps import Actor, LabDep, MaybeActor
from countylab.web.params import Id
from countylab.web.ui.common import flash_redirect, form_action, lang_of, render

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form(max_length=4000)]
Short = Annotated[str, Form(max_length=200)]


def _json(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` block (no ``</script>`` can end it early)."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


@router.get("/dashboards")
def list_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    authorize(actor, Permission.showcase_view, target="dashboards")
    with lab.read() as s:
        n = dashboards.counts(s)
        items = [dashboards.summary(d, n.get(d.id, 0)) for d in dashboards.list_all(s)]
        project = metrics.showcase_project(s)
        ms = [metrics.view(m) for m in metrics.list_all(s)]
        screens = [bigscreen.view(b) for b in bigscreen.list_all(s)]
    return render(
        request,
        "dashboards.html",
        items=items,
        metrics=ms,
        screens=screens,
        showcase_project=project.id if project else None,
        schedules=list(metrics.SCHEDULES),
        can_compose=has_permission(actor, Permission.dashboard_compose),
        can_budget=has_permission(actor, Permission.budget_manage),
    )


@router.post("/dashboards")
def create(
    request: Request, actor: Actor, lab: LabDep, slug: Short, title: Short, description: Text = ""
) -> RedirectResponse:
    made: list[int] = []

    def act() -> None:
        with lab.tx() as s:
            made.append(dashboards.create(s, actor, slug=slug, title=title, description=description).id)

    resp = form_action(request, "/dashboards", act, "dash.flash.created")
    if made:
        resp.headers["location"] = f"/dashboards/{made[0]}/edit"
    return resp


@router.get("/dashboards/{dashboard_id}")
def dashboard_page(request: Request, dashboard_id: Id, actor: Actor, lab: LabDep) -> Response:
    authorize(actor, Permission.showcase_view, target=f"dashboard:{dashboard_id}")
    with lab.read() as s:
        d = dashboards.view(s, dashboard_id)
        gone = bool(
            d["state"] == "published" and not any(x.id == dashboard_id for x in publication.public_list(s))
        )
    charts = [
        {"id": w["id"], "kind": w["kind"], "title": w["title"], "chart": w["chart"]} for w in d["items"]
    ]
    return render(
        request,
        "dashboard.html",
        d=d,
        gone=gone,
        charts_json=_json({"widgets": charts}),
        can_compose=has_permission(actor, Permission.dashboard_compose),
        can_approve=has_permission(actor, Permission.dashboard_approve),
        mine=bool(d["approval"] and d["approval"]["requested_by"] == actor.user_id),
    )


@router.get("/dashboards/{dashboard_id}/edit")
def edit_page(request: Request, dashboard_id: Id, actor: Actor, lab: LabDep) -> Response:
    authorize(actor, Permission.dashboard_compose, target=f"dashboard:{dashboard_id}")
    with lab.read() as s:
        d = dashboards.view(s, dashboard_id)
        open_sets = [
            {"id": ds.id, "title": ds.title, "name": ds.name}
            for ds in s.execute(
                select(Dataset).where(Dataset.grade == OPEN_GRADE).order_by(Dataset.id)
            ).scalars()
        ]
        files = [
            {"id": f.id, "label": f"R-{r.id} · {r.title or ''} · {f.name}"}
            for f, r in s.execute(
                select(ReleaseFile, ReleaseRequest)
                .join(ReleaseRequest, ReleaseRequest.id == ReleaseFile.request_id)
                .where(ReleaseRequest.state == "released")
                .order_by(ReleaseRequest.id.desc())
                .limit(200)
            ).all()
            if f.name.lower().endswith(".csv")
        ]
        ms = [{"id": m.id, "title": m.title, "ready": bool(m.result)} for m in metrics.list_all(s)]
    return render(
        request,
        "dashboard_edit.html",
        d=d,
        kinds=KINDS,
        aggregates=AGGREGATES,
        open_sets=open_sets,
        files=files,
        metric_choices=ms,
    )


@router.post("/dashboards/{dashboard_id}/edit")
def edit_meta(
    request: Request, dashboard_id: Id, actor: Actor, lab: LabDep, title: Short, description: Text = ""
) -> RedirectResponse:
    def act() -> None:
        with lab.tx() as s:
            dashboards.update_meta(s, actor, dashboard_id, title=title, description=description)

    return form_action(request, f"/dashboards/{dashboard_id}/edit", act, "dash.flash.saved")


class WidgetForm(BaseModel):
    """The widget form of the edit page (add, and edit one widget): the API's ``WidgetIn`` flattened."""

    kind: str = Field(max_length=10)
    title: str = Field(max_length=200)
    source_kind: str = Field(max_length=10)
    unit: str = Field(default="", max_length=40)
    dataset_id: str = Field(default="", max_length=12)
    group_by: str = Field(default="", max_length=64)
    value: str = Field(default="", max_length=64)
    aggregate: str = Field(default="count", max_length=10)
    bucket: str = Field(default="", max_length=10)
    file_id: str = Field(default="", max_length=12)
    label_column: str = Field(default="", max_length=64)
    value_column: str = Field(default="", max_length=64)
    metric_id: str = Field(default="", max_length=12)
    category: str = Field(default="", max_length=64)
    position: int | None = Field(default=None, ge=0, le=100)

    def spec(self) -> WidgetSpec:
        fields: dict[str, dict[str, str]] = {
            "open": {
                "dataset_id": self.dataset_id,
                "group_by": self.group_by,
                "value": self.value,
                "aggregate": self.aggregate,
                "bucket": self.bucket,
            },
            "release": {
                "file_id": self.file_id,
                "label_column": self.label_column,
                "value_column": self.value_column,
            },
            "dp": {"metric_id": self.metric_id, "value_column": self.value_column},
        }
        source: dict[str, Any] = {k: v for k, v in fields.get(self.source_kind, {}).items() if v}
        if self.category:
            source["category"] = self.category
        return WidgetSpec(self.kind, self.title, self.source_kind, source, self.unit)


WidgetFormDep = Annotated[WidgetForm, Form()]


@router.post("/dashboards/{dashboard_id}/widgets")
def add_widget(
    request: Request, dashboard_id: Id, actor: Actor, lab: LabDep, form: WidgetFormDep
) -> RedirectResponse:
    spec = form.spec()

    def act() -> None:
        with lab.tx() as s:
            w = dashboards.add_widget(s, actor, lab.ingestion, dashboard_id, spec)
            if form.position is not None:
                dashboards.move_widget(s, actor, dashboard_id, w.id, form.position)

    return form_action(request, f"/dashboards/{dashboard_id}/edit", act, "dash.flash.widget_added")


@router.post("/dashboards/{dashboard_id}/widgets/{widget_id}")
def update_widget(
    request: Request, dashboard_id: Id, widget_id: Id, actor: Actor, lab: LabDep, form: WidgetFormDep
) -> RedirectResponse:
    """Edit one widget: the same service call (validation, re-render, audit) as ``PUT`` of the API."""
    spec = form.spec()

    def act() -> None:
        with lab.tx() as s:
            w = dashboards.update_widget(s, actor, lab.ingestion, dashboard_id, widget_id, spec)
            if form.position is not None:
                dashboards.move_widget(s, actor, dashboard_id, w.id, form.position)

    back = f"/dashboards/{dashboard_id}/edit#widget-{widget_id}"
    return form_action(request, back, act, "dash.flash.widget_saved")


@router.post("/dashboards/{dashboard_id}/widgets/{widget_id}/delete")
def delete_widget(
    request: Request, dashboard_id: Id, widget_id: Id, actor: Actor, lab: LabDep
) -> RedirectResponse:
    def act() -> None:
        with lab.tx() as s:
            dashboards.delete_widget(s, actor, dashboard_id, widget_id)

    return form_action(request, f"/dashboards/{dashboard_id}/edit", act, "dash.flash.widget_deleted")


@router.post("/dashboards/{dashboard_id}/widgets/{widget_id}/move")
def move_widget(
    request: Request,
    dashboard_id: Id,
    widget_id: Id,
    actor: Actor,
    lab: LabDep,
    position: Annotated[int, Form(ge=0, le=100)],
) -> RedirectResponse:
    def act() -> None:
        with lab.tx() as s:
            dashboards.move_widget(s, actor, dashboard_id, widget_id, position)

    return form_action(request, f"/dashboards/{dashboard_id}/edit", act, "dash.flash.saved")


@router.post("/dashboards/{dashboard_id}/submit")
def submit(request: Request, dashboard_id: Id, actor: Actor, lab: LabDep) -> RedirectResponse:
    def act() -> None:
        with lab.tx() as s:
            publication.submit(s, actor, dashboard_id)

    return form_action(request, f"/dashboards/{dashboard_id}", act, "dash.flash.submitted")


@router.post("/dashboards/{dashboard_id}/decision")
def decide(
    request: Request,
    dashboard_id: Id,
    actor: Actor,
    lab: LabDep,
    choice: Annotated[str, Form(max_length=10)],
    version: Annotated[int, Form(ge=1, le=2**31 - 1)],
    comment: Text = "",
) -> RedirectResponse:
    def act() -> None:
        if choice not in ("approve", "reject"):
            raise ValidationFailed("请选择批准或退回", "Choose approve or send back", field="choice")
        with lab.tx() as s:
            publication.decide(
                s, actor, dashboard_id, approve=choice == "approve", version=version, comment=comment
            )

    key = "dash.flash.approved" if choice == "approve" else "dash.flash.rejected"
    return form_action(request, f"/dashboards/{dashboard_id}", act, key)


@router.post("/dashboards/metrics")
def create_metric(
    request: Request,
    actor: Actor,
    lab: LabDep,
    name: Annotated[str, Form(max_length=64)],
    title: Short,
    sql: Text,
    epsilon: Annotated[float, Form(gt=0, le=10)],
    schedule: Annotated[str, Form(max_length=10)] = "daily",
) -> RedirectResponse:
    def act() -> None:
        with lab.tx() as s:
            metrics.create(
                s,
                actor,
                name=name,
                title=title,
                sql=sql,
                epsilon=epsilon,
                schedule=schedule,
                gateway=lab.gateway,
            )

    return form_action(request, "/dashboards#metrics", act, "dash.flash.metric_created")


@router.post("/dashboards/metrics/{metric_id}")
def update_metric(
    request: Request,
    metric_id: Id,
    actor: Actor,
    lab: LabDep,
    title: Short,
    epsilon: Annotated[float, Form(gt=0, le=10)],
    schedule: Annotated[str, Form(max_length=10)],
) -> RedirectResponse:
    def act() -> None:
        with lab.tx() as s:
            metrics.update(
                s, actor, metric_id, title=title, epsilon=epsilon, schedule=schedule, gateway=lab.gateway
            )

    return form_action(request, "/dashboards#metrics", act, "dash.flash.saved")


@router.post("/dashboards/metrics/{metric_id}/refresh")
def refresh_metric(request: Request, metric_id: Id, actor: Actor, lab: LabDep) -> RedirectResponse:
    t = translator(lang_of(request))
    out: list[dict[str, Any]] = []
    resp = form_action(
        request,
        "/dashboards#metrics",
        lambda: out.append(metrics.refresh(lab, actor, metric_id)),
        "dash.flash.refreshed",
    )
    if out and out[0]["stale"]:  # refused by the gateway: say why (the cached value stays)
        reason = out[0]["stale_reason"] if lang_of(request) == "zh-CN" else out[0]["stale_reason_en"]
        resp = flash_redirect("/dashboards#metrics", t("dash.flash.refresh_refused", reason=reason), "error")
    return resp


# ------------------------------------------------------------------------------------- big screen


@router.get("/bigscreen")
def screens_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    authorize(actor, Permission.showcase_view, target="bigscreen")
    with lab.read() as s:
        screens = [bigscreen.view(b) for b in bigscreen.list_all(s)]
        boards = [dashboards.summary(d) for d in dashboards.list_all(s)]
    may = has_permission(actor, Permission.showcase_manage) or has_permission(
        actor, Permission.dashboard_compose
    )
    return render(request, "bigscreens.html", screens=screens, boards=boards, can_configure=may)


@router.post("/bigscreen")
def create_screen(
    request: Request,
    actor: Actor,
    lab: LabDep,
    title: Short,
    dashboard_ids: Annotated[list[int], Form()],
    seconds: Annotated[int, Form(ge=1, le=3600)] = 20,
) -> RedirectResponse:
    def act() -> None:
        with lab.tx() as s:
            bigscreen.create(s, actor, title=title, dashboard_ids=dashboard_ids, seconds=seconds)

    return form_action(request, "/bigscreen", act, "dash.flash.screen_saved")


@router.post("/bigscreen/{screen_id}")
def update_screen(
    request: Request,
    screen_id: Id,
    actor: Actor,
    lab: LabDep,
    title: Short,
    dashboard_ids: Annotated[list[int], Form()],
    seconds: Annotated[int, Form(ge=1, le=3600)] = 20,
) -> RedirectResponse:
    def act() -> None:
        with lab.tx() as s:
            bigscreen.update(s, actor, screen_id, title=title, dashboard_ids=dashboard_ids, seconds=seconds)

    return form_action(request, "/bigscreen", act, "dash.flash.screen_saved")


@router.get("/bigscreen/{screen_id}")
def screen_page(request: Request, screen_id: Id, actor: Actor, lab: LabDep) -> Response:
    """The lobby screen: no navigation; ``bigscreen.js`` polls ``/api/bigscreens/{id}/data``."""
    authorize(actor, Permission.showcase_view, target=f"bigscreen:{screen_id}")
    with lab.read() as s:
        data = bigscreen.screen_data(s, screen_id)
    return render(request, "bigscreen.html", screen=data, screen_json=_json(data))


# ---------------------------------------------------------------------------------- public pages


@router.get("/public/dashboards")
def public_list(request: Request, lab: LabDep, actor: MaybeActor) -> Response:
    with lab.read() as s:
        items = [
            {"slug": d.slug, "title": d.title, "description": d.description}
            for d in publication.public_list(s)
        ]
    return render(request, "public/dashboards.html", items=items)


@router.get("/public/dashboards/{slug}")
def public_page(
    request: Request, slug: Annotated[str, Path(max_length=64)], lab: LabDep, actor: MaybeActor
) -> Response:
    try:
        with lab.read() as s:
            payload = PUBLIC.get(s, slug)
    except publication.Withdrawn as exc:
        return render(
            request, "public/dashboard.html", status_code=404, d=None, message=exc.message(lang_of(request))
        )
    except NotFound as exc:
        return render(
            request, "public/dashboard.html", status_code=404, d=None, message=exc.message(lang_of(request))
        )
    return render(request, "public/dashboard.html", d=publication.public_json(payload), message="")
