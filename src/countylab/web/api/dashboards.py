"""API: dashboards (数据看板), showcase DP metrics, publication approvals and big screens.

In-lab routes need a login (``showcase.view`` to read; ``dashboard.compose`` to compose and refresh
metrics; ``dashboard.approve`` to decide).  ``/api/public/dashboards…`` need none: they serve only
published dashboards from the widgets' cached charts (no query, no file read at view time).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from countylab.identity.access import authorize
from countylab.identity.roles import Permission
from countylab.showcase import bigscreen, dashboards, metrics, publication
from countylab.showcase.widgets import WidgetSpec
from countylab.web.deps import Actor, LabDep
from countylab.web.params import BodyId, Count, Id

router = APIRouter(prefix="/api", tags=["showcase"])

Number = Annotated[float, Field(strict=True)]
PUBLIC = publication.PublicCache()


def _can_view(actor: Any) -> None:
    authorize(actor, Permission.showcase_view, target="dashboards")


class DashboardIn(BaseModel):
    slug: str = Field(max_length=64)
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=4000)


class DashboardMetaIn(BaseModel):
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=4000)


class WidgetIn(BaseModel):
    kind: str = Field(max_length=10)
    title: str = Field(max_length=200)
    unit: str = Field(default="", max_length=40)
    source_kind: str = Field(max_length=10)
    source: dict[str, Any] = Field(default_factory=dict)
    position: Count | None = None

    def spec(self) -> WidgetSpec:
        return WidgetSpec(self.kind, self.title, self.source_kind, dict(self.source), self.unit)


class DecisionIn(BaseModel):
    approve: bool
    version: Count
    comment: str = Field(default="", max_length=2000)


class MetricIn(BaseModel):
    name: str = Field(max_length=64)
    title: str = Field(max_length=200)
    sql: str = Field(max_length=4000)
    epsilon: Number
    schedule: str = Field(default="daily", max_length=10)


class MetricUpdateIn(BaseModel):
    title: str = Field(max_length=200)
    epsilon: Number
    schedule: str = Field(max_length=10)


class ScreenIn(BaseModel):
    title: str = Field(max_length=200)
    dashboard_ids: list[BodyId] = Field(max_length=bigscreen.MAX_DASHBOARDS)
    seconds: Count = 20


# ---------------------------------------------------------------------------------- dashboards


@router.get("/dashboards")
def list_dashboards(actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Every dashboard with its state (草稿/待审批/已发布), version and widget count."""
    _can_view(actor)
    with lab.read() as s:
        n = dashboards.counts(s)
        return {"items": [dashboards.summary(d, n.get(d.id, 0)) for d in dashboards.list_all(s)]}


@router.post("/dashboards")
def create_dashboard(body: DashboardIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        d = dashboards.create(s, actor, slug=body.slug, title=body.title, description=body.description)
        return dashboards.summary(d, 0)


@router.get("/dashboards/{dashboard_id}")
def get_dashboard(dashboard_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """A dashboard, its widgets (definition and cached chart) and its latest approval record."""
    _can_view(actor)
    with lab.read() as s:
        return dashboards.view(s, dashboard_id)


@router.put("/dashboards/{dashboard_id}")
def update_dashboard(dashboard_id: Id, body: DashboardMetaIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Change title or description (back to draft: a published dashboard needs approval again)."""
    with lab.tx() as s:
        return dashboards.summary(
            dashboards.update_meta(s, actor, dashboard_id, title=body.title, description=body.description)
        )


@router.post("/dashboards/{dashboard_id}/widgets")
def add_widget(dashboard_id: Id, body: WidgetIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Add a widget: rendered now from its one source (a bad source is refused with the reason)."""
    with lab.tx() as s:
        w = dashboards.add_widget(s, actor, lab.ingestion, dashboard_id, body.spec())
        if body.position is not None:
            dashboards.move_widget(s, actor, dashboard_id, w.id, body.position)
        return dashboards.widget_view(w)


@router.put("/dashboards/{dashboard_id}/widgets/{widget_id}")
def update_widget(
    dashboard_id: Id, widget_id: Id, body: WidgetIn, actor: Actor, lab: LabDep
) -> dict[str, Any]:
    with lab.tx() as s:
        w = dashboards.update_widget(s, actor, lab.ingestion, dashboard_id, widget_id, body.spec())
        if body.position is not None:
            dashboards.move_widget(s, actor, dashboard_id, w.id, body.position)
        return dashboards.widget_view(w)


@router.delete("/dashboards/{dashboard_id}/widgets/{widget_id}")
def delete_widget(dashboard_id: Id, widget_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        dashboards.delete_widget(s, actor, dashboard_id, widget_id)
        return {"deleted": widget_id}


@router.post("/dashboards/{dashboard_id}/submit")
def submit_dashboard(dashboard_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Ask the security officer to publish: the approval record lists every number that will appear."""
    with lab.tx() as s:
        return dashboards.approval_view(publication.submit(s, actor, dashboard_id))


@router.post("/dashboards/{dashboard_id}/decision")
def decide_dashboard(dashboard_id: Id, body: DecisionIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Security officer: approve (publish) or send back the pending version."""
    with lab.tx() as s:
        a = publication.decide(
            s, actor, dashboard_id, approve=body.approve, version=body.version, comment=body.comment
        )
        return dashboards.approval_view(a)


# ------------------------------------------------------------------------------------- metrics


@router.get("/showcase/metrics")
def list_metrics(actor: Actor, lab: LabDep) -> dict[str, Any]:
    """The showcase's DP metrics with their cached result, schedule, and why a refresh was refused."""
    _can_view(actor)
    with lab.read() as s:
        project = metrics.showcase_project(s)
        return {
            "project_id": project.id if project else None,
            "items": [metrics.view(m) for m in metrics.list_all(s)],
        }


@router.get("/showcase/metrics/{metric_id}")
def get_metric(metric_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """One showcase metric: its SQL, ε, schedule, cached result with intervals, and when it is due."""
    _can_view(actor)
    with lab.read() as s:
        return metrics.view(metrics.get(s, metric_id))


@router.post("/showcase/metrics")
def create_metric(body: MetricIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        m = metrics.create(
            s,
            actor,
            name=body.name,
            title=body.title,
            sql=body.sql,
            epsilon=body.epsilon,
            schedule=body.schedule,
            gateway=lab.gateway,
        )
        return metrics.view(m)


@router.put("/showcase/metrics/{metric_id}")
def update_metric(metric_id: Id, body: MetricUpdateIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        m = metrics.update(
            s,
            actor,
            metric_id,
            title=body.title,
            epsilon=body.epsilon,
            schedule=body.schedule,
            gateway=lab.gateway,
        )
        return metrics.view(m)


@router.post("/showcase/metrics/{metric_id}/refresh")
def refresh_metric(metric_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Run the metric's DP query now, charged to the showcase budget; refused → stale, with the reason."""
    return metrics.refresh(lab, actor, metric_id)


# ---------------------------------------------------------------------------------- big screens


@router.get("/bigscreens")
def list_screens(actor: Actor, lab: LabDep) -> dict[str, Any]:
    _can_view(actor)
    with lab.read() as s:
        return {"items": [bigscreen.view(b) for b in bigscreen.list_all(s)]}


@router.post("/bigscreens")
def create_screen(body: ScreenIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        b = bigscreen.create(
            s, actor, title=body.title, dashboard_ids=body.dashboard_ids, seconds=body.seconds
        )
        return bigscreen.view(b)


@router.put("/bigscreens/{screen_id}")
def update_screen(screen_id: Id, body: ScreenIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        b = bigscreen.update(
            s, actor, screen_id, title=body.title, dashboard_ids=body.dashboard_ids, seconds=body.seconds
        )
        return bigscreen.view(b)


@router.get("/bigscreens/{screen_id}/data")
def screen_data(screen_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """What the big screen draws now (polled by the screen; cached charts only)."""
    _can_view(actor)
    with lab.read() as s:
        return bigscreen.screen_data(s, screen_id)


# ---------------------------------------------------------------------------------- public JSON


@router.get("/public/dashboards")
def public_dashboards(lab: LabDep) -> dict[str, Any]:
    """Published dashboards (no login)."""
    with lab.read() as s:
        return {
            "items": [
                {"slug": d.slug, "title": d.title, "description": d.description}
                for d in publication.public_list(s)
            ]
        }


@router.get("/public/dashboards/{slug}")
def public_dashboard(slug: Annotated[str, Path(max_length=64)], lab: LabDep) -> JSONResponse:
    """One published dashboard's charts (no login; from the cache, never a query)."""
    with lab.read() as s:
        payload = PUBLIC.get(s, slug)
    return JSONResponse(publication.public_json(payload), headers={"Cache-Control": "public, max-age=15"})
