"""API of the approval workflow (审批), public notices (公示), objections, the operator's view and
the workflow configuration.  Thin: each route parses, calls one service, formats."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from countylab import audit
from countylab.export import content_disposition, table_to_xlsx
from countylab.identity.access import authorize
from countylab.identity.roles import Permission
from countylab.operations import applications, overview, publicity, workflow, workflow_config, workflow_view
from countylab.operations.workflow import SecurityTerms
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id
from countylab.web.ui.common import lang_of

router = APIRouter(prefix="/api", tags=["approvals"])
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def waiting_json(w: overview.Waiting, lang: str) -> dict[str, Any]:
    return {
        "application_id": w.application_id,
        "number": w.number,
        "title": w.title,
        "organisation": w.organisation,
        "step": w.kind,
        "step_name": workflow_view.step_name(w.kind, lang) if w.kind in workflow_view.STEP_EN else w.kind,
        "step_id": w.step_id,
        "department": w.detail if w.kind == "consent" else "",
        "since": w.since.isoformat() if w.since else None,
        "due_at": w.due_at.isoformat() if w.due_at else None,
        "overdue": w.overdue,
        "ref": w.detail if w.kind in ("objection", "notice") else "",
    }


@router.get("/reviews")
def my_reviews(request: Request, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """What waits for the caller (待我审批), overdue first."""
    with lab.read() as s:
        items = overview.queue(s, actor, now=lab.clock())
    return {"items": [waiting_json(w, lang_of(request)) for w in items], "count": len(items)}


@router.get("/applications/{application_id}/workflow")
def application_workflow(request: Request, application_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        app = applications.get(s, actor, application_id)
        return workflow_view.view(s, app, actor, now=lab.clock(), lang=lang_of(request))


class DecisionIn(BaseModel):
    step: Literal["precheck", "consent", "security", "expert", "final"]
    decision: str = Field(max_length=20)
    reason: str = Field(default="", max_length=4000)
    # the security officer's terms (安全审查), all optional
    channels: list[str] | None = None
    columns: dict[int, list[str] | None] | None = None
    budgets: dict[int, tuple[float | None, float | None]] | None = None
    quota: dict[str, float | int | None] | None = None
    conditions: str = Field(default="", max_length=4000)


@router.post("/applications/{app_id}/decisions")
def decide(app_id: Id, body: DecisionIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Decide the application's open step ``step`` (a consent: the caller's department's)."""
    terms = None
    if body.step == "security":
        terms = SecurityTerms(
            channels=tuple(body.channels) if body.channels is not None else None,
            columns=body.columns,
            budgets=body.budgets,
            quota=dict(body.quota) if body.quota is not None else None,
            conditions=body.conditions,
        )
    with lab.tx() as s:
        return workflow_view.decide(
            s, actor, app_id, body.step, body.decision, body.reason, now=lab.clock(), terms=terms
        )


class ExpertsIn(BaseModel):
    user_ids: list[int] = Field(min_length=1, max_length=20)


@router.post("/applications/{app_id}/experts")
def assign_experts(app_id: Id, body: ExpertsIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    authorize(actor, Permission.application_precheck, target=f"application:{app_id}")
    with lab.tx() as s:
        app = workflow.get_application(s, app_id)
        step = workflow.open_step(s, app, "expert")
        assigned = workflow.assign_experts(s, actor, step.id, body.user_ids, now=lab.clock())
    return {"application_id": app_id, "step_id": step.id, "experts": assigned}


# -- notices and objections --------------------------------------------------------------------


def notice_json(n: publicity.PublicNotice) -> dict[str, Any]:
    return {
        "id": n.id,
        "application_number": n.application_number,
        "title": n.title,
        "organisation": n.organisation,
        "scenario_title": n.scenario_title,
        "datasets": n.datasets,
        "channels": n.channels,
        "starts_on": n.starts_on.isoformat(),
        "ends_on": n.ends_on.isoformat(),
        "term_from": n.term_from.isoformat() if n.term_from else None,
        "term_until": n.term_until.isoformat() if n.term_until else None,
        "objections_open": n.objections_open,
        "status": n.status,
    }


@router.get("/notices")
def list_notices(actor: Actor, lab: LabDep) -> dict[str, Any]:
    """The public notices running now (the same as the public page, for logged-in clients)."""
    with lab.read() as s:
        items = publicity.public_notices(s, now=lab.clock())
    return {"items": [notice_json(n) for n in items]}


class ObjectionIn(BaseModel):
    reason: str = Field(max_length=4000)


@router.post("/notices/{notice_id}/objections")
def file_objection(notice_id: Id, body: ObjectionIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        obj = publicity.file_objection(s, actor, notice_id, body.reason, now=lab.clock())
        return {"id": obj.id, "notice_id": notice_id, "status": obj.status}


class AnswerIn(BaseModel):
    outcome: Literal["continue", "in_review", "rejected"]
    answer: str = Field(max_length=4000)


@router.post("/objections/{objection_id}/answer")
def answer_objection(objection_id: Id, body: AnswerIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        obj = publicity.answer_objection(s, actor, objection_id, body.outcome, body.answer, now=lab.clock())
        return {"id": obj.id, "status": obj.status, "outcome": obj.outcome}


@router.post("/notices/{notice_id}/conclude")
def conclude_notice(notice_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """End a notice whose period is over with no open objection (the sweep does it too)."""
    with lab.tx() as s:
        app = publicity.conclude(s, actor, notice_id, now=lab.clock())
        return {"application_id": app.id, "number": app.number, "status": app.status}


# -- the operator's view -----------------------------------------------------------------------


@router.get("/ops/overview")
def ops_overview(actor: Actor, lab: LabDep) -> dict[str, Any]:
    authorize(actor, Permission.ops_report, target="ops")
    now = lab.clock()
    with lab.read() as s:
        stages = overview.by_stage(s, now=now)
        times = overview.stage_times(s)
        late = overview.overdue_steps(s, now=now)
        top = overview.most_requested(s)
    return {
        "stages": [
            {
                "stage": c.stage,
                "count": c.count,
                "applications": [{"id": i, "number": n, "title": t} for i, n, t in c.applications],
            }
            for c in stages
        ],
        "stage_times": [t.__dict__ for t in times],
        "overdue": [waiting_json(w, "zh-CN") for w in late],
        "most_requested": [r.__dict__ for r in top],
    }


def export_xlsx(lab: Any, actor: Any, table: str, via: str) -> Response:
    """One table of the operator's view as XLSX (audited ``ops.export``, like other exports)."""
    authorize(actor, Permission.ops_report, target="ops")
    now = lab.clock()
    with lab.read() as s:
        data, heads = overview.table(s, table, now=now)
    body = table_to_xlsx(
        data, heads, sheet=_SHEETS.get(table, table), title=f"运营看板 · {_SHEETS.get(table, table)}"
    )
    with lab.tx() as s:
        audit.record(s, actor, "ops.export", "ops", table=table, rows=data.num_rows, format="xlsx", via=via)
    return Response(
        body,
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": content_disposition(f"运营看板-{_SHEETS.get(table, table)}.xlsx")},
    )


_SHEETS = {"applications": "申请", "stage_times": "环节用时", "overdue": "超期", "datasets": "热门数据集"}


@router.get("/ops/export", responses={200: {"content": {XLSX_TYPE: {}}}})
def ops_export(
    actor: Actor,
    lab: LabDep,
    table: Literal["applications", "stage_times", "overdue", "datasets"] = "applications",
) -> Response:
    return export_xlsx(lab, actor, table, "api")


# -- configuration -----------------------------------------------------------------------------


@router.get("/workflow/config")
def get_config(actor: Actor, lab: LabDep, version: int | None = None) -> dict[str, Any]:
    authorize(actor, Permission.ops_report, target="workflow")
    with lab.read() as s:
        current = workflow_config.current_version(s)
        return {
            "version": current if version is None else version,
            "current": current,
            "source": workflow_config.source_of(s, version),
            "versions": [
                {"version": r.version, "note": r.note, "created_at": r.created_at.isoformat()}
                for r in workflow_config.history(s)
            ],
        }


class ConfigIn(BaseModel):
    source: str = Field(max_length=100_000)
    note: str = Field(default="", max_length=500)


@router.put("/workflow/config")
def put_config(body: ConfigIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    authorize(actor, Permission.workflow_configure, target="workflow")
    with lab.tx() as s:
        cfg = workflow_config.save(s, body.source, user_id=actor.user_id, note=body.note, now=lab.clock())
        audit.record(s, actor, "workflow.configure", "workflow", version=cfg.version, note=body.note)
    return {"version": cfg.version}
