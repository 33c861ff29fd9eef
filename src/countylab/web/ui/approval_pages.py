"""Pages of the approval workflow: the review queue (/reviews), the operator's view (/ops, its
Excel export), the workflow configuration (/ops/workflow), the public notices (/public/notices,
no login), and the forms the application page's workflow panel (``_workflow.html``) posts to.

``install`` gives templates ``workflow_context(application, principal)`` so that the panel,
included by the application page, reads its rounds in ``lab.read()``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from countylab.errors import ValidationFailed
from countylab.identity.access import Principal, authorize, has_permission
from countylab.identity.roles import Permission
from countylab.operations import overview, publicity, workflow_config, workflow_view
from countylab.operations.workflow import SecurityTerms
from countylab.web.api.approvals import export_xlsx, waiting_json
from countylab.web.deps import Actor, LabDep, MaybeActor
from countylab.web.params import Id
from countylab.web.ui.common import form_action, lang_of, render

router = APIRouter(include_in_schema=False)


def install(templates: Any, lab: Any) -> None:
    def context(application: Any, principal: Principal | None, lang: str = "zh-CN") -> dict[str, Any] | None:
        if principal is None:
            return None
        with lab.read() as s:
            return workflow_view.view(s, application, principal, now=lab.clock(), lang=lang)

    templates.env.globals["workflow_context"] = context


@router.get("/reviews")
def reviews_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    lang = lang_of(request)
    with lab.read() as s:
        items = [waiting_json(w, lang) for w in overview.queue(s, actor, now=lab.clock())]
    return render(request, "reviews.html", items=items)


@router.get("/ops")
def ops_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    authorize(actor, Permission.ops_report, target="ops")
    lang = lang_of(request)
    now = lab.clock()
    with lab.read() as s:
        stages = overview.by_stage(s, now=now)
        times = overview.stage_times(s)
        late = [waiting_json(w, lang) for w in overview.overdue_steps(s, now=now)]
        top = overview.most_requested(s)
        cfg_version = workflow_config.current_version(s)
    return render(
        request,
        "ops.html",
        stages=stages,
        times=times,
        overdue=late,
        top=top,
        config_version=cfg_version,
        can_configure=has_permission(actor, Permission.workflow_configure),
    )


@router.get("/ops/export.xlsx")
def ops_export(actor: Actor, lab: LabDep, table: str = "applications") -> Response:
    if table not in overview.TABLES:
        raise ValidationFailed(
            f"没有名为 {table} 的表", f"no table {table!r}", field="table", allowed=list(overview.TABLES)
        )
    return export_xlsx(lab, actor, table, "page")


@router.get("/ops/workflow")
def workflow_config_page(request: Request, actor: Actor, lab: LabDep, version: int | None = None) -> Response:
    authorize(actor, Permission.ops_report, target="workflow")
    with lab.read() as s:
        current = workflow_config.current_version(s)
        shown = current if version is None or not 0 <= version <= current else version
        source = workflow_config.source_of(s, shown)
        cfg = workflow_config.load(s, shown)
        versions = [
            {"version": r.version, "note": r.note, "created_at": r.created_at}
            for r in workflow_config.history(s)
        ]
    return render(
        request,
        "workflow_config.html",
        source=source,
        config=cfg,
        shown=shown,
        current=current,
        versions=versions,
        can_edit=has_permission(actor, Permission.workflow_configure),
    )


@router.post("/ops/workflow")
def save_workflow_config(
    request: Request,
    actor: Actor,
    lab: LabDep,
    source: Annotated[str, Form(max_length=100_000)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    from countylab import audit

    saved: dict[str, int] = {}

    def run() -> None:
        authorize(actor, Permission.workflow_configure, target="workflow")
        with lab.tx() as s:
            cfg = workflow_config.save(s, source, user_id=actor.user_id, note=note, now=lab.clock())
            audit.record(s, actor, "workflow.configure", "workflow", version=cfg.version, note=note)
            saved["v"] = cfg.version

    return form_action(request, "/ops/workflow", run, "wf.flash.config_saved")


# -- decisions from the application page ------------------------------------------------------


def _floats(text: str, field: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValidationFailed(
            f"{field} 必须是数字：{text[:20]}", f"{field} must be a number: {text[:20]}", field=field
        ) from None


@router.post("/applications/{app_id}/workflow/decide")
async def decide_form(request: Request, app_id: Id, actor: Actor, lab: LabDep) -> Response:
    """One form for every step; the security officer's form adds channels, columns, budgets,
    quota and conditions (fields ``channel``, ``col_<id>``, ``eps_<id>``, ``delta_<id>``, ``q_<name>``)."""
    form = await request.form()
    step = str(form.get("step", ""))
    decision = str(form.get("decision", ""))
    reason = str(form.get("reason", ""))[:4000]
    back = f"/applications/{app_id}"

    def run() -> None:
        terms = None
        if step == "security" and decision == "approve":
            channels = tuple(str(c) for c in form.getlist("channel"))
            columns: dict[int, list[str] | None] = {}
            budgets: dict[int, tuple[float | None, float | None]] = {}
            for key in form:
                if key.startswith("ds_"):
                    ds = int(key[3:])
                    columns[ds] = [str(c) for c in form.getlist(f"col_{ds}")]
                    budgets[ds] = (
                        _floats(str(form.get(f"eps_{ds}", "")), "ε"),
                        _floats(str(form.get(f"delta_{ds}", "")), "δ"),
                    )
            quota = {
                k: _floats(str(form.get(f"q_{k}", "")), k)
                for k in (
                    "max_cpu",
                    "max_memory_mb",
                    "max_time_s",
                    "cpu_seconds",
                    "concurrent_jobs",
                    "period_days",
                )
                if str(form.get(f"q_{k}", "")).strip()
            }
            terms = SecurityTerms(
                channels=channels,
                columns=columns or None,
                budgets=budgets or None,
                quota=quota or None,
                conditions=str(form.get("conditions", ""))[:4000],
            )
        with lab.tx() as s:
            workflow_view.decide(s, actor, app_id, step, decision, reason, now=lab.clock(), terms=terms)

    return form_action(request, back, run, "wf.flash.decided")


@router.post("/applications/{app_id}/workflow/experts")
async def experts_form(request: Request, app_id: Id, actor: Actor, lab: LabDep) -> Response:
    form = await request.form()
    try:
        ids = [int(str(x)) for x in form.getlist("expert")]
    except ValueError:
        ids = []

    def run() -> None:
        from countylab.operations import workflow

        authorize(actor, Permission.application_precheck, target=f"application:{app_id}")
        with lab.tx() as s:
            app = workflow.get_application(s, app_id)
            step = workflow.open_step(s, app, "expert")
            workflow.assign_experts(s, actor, step.id, ids, now=lab.clock())

    return form_action(request, f"/applications/{app_id}", run, "wf.flash.experts")


@router.post("/notices/{notice_id}/objections")
def object_form(
    request: Request,
    notice_id: Id,
    actor: Actor,
    lab: LabDep,
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            publicity.file_objection(s, actor, notice_id, reason, now=lab.clock())

    return form_action(request, f"/public/notices/{notice_id}", run, "wf.flash.objected")


@router.post("/objections/{objection_id}/answer")
def answer_form(
    request: Request,
    objection_id: Id,
    actor: Actor,
    lab: LabDep,
    outcome: Annotated[str, Form(max_length=20)] = "",
    answer: Annotated[str, Form(max_length=4000)] = "",
    back: Annotated[str, Form(max_length=200)] = "/reviews",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            publicity.answer_objection(s, actor, objection_id, outcome, answer, now=lab.clock())

    return form_action(request, _safe(back), run, "wf.flash.answered")


@router.post("/notices/{notice_id}/conclude")
def conclude_form(
    request: Request,
    notice_id: Id,
    actor: Actor,
    lab: LabDep,
    back: Annotated[str, Form(max_length=200)] = "/reviews",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            publicity.conclude(s, actor, notice_id, now=lab.clock())

    return form_action(request, _safe(back), run, "wf.flash.concluded")


def _safe(back: str) -> str:
    return back if back.startswith("/") and not back.startswith("//") else "/reviews"


# -- public notices (no login) -----------------------------------------------------------------


@router.get("/public/notices")
def public_notices_page(request: Request, principal: MaybeActor, lab: LabDep) -> Response:
    with lab.read() as s:
        running = publicity.public_notices(s, now=lab.clock())
        ended = publicity.recent_notices(s, limit=20)
    return render(request, "public/notices.html", running=running, ended=ended)


@router.get("/public/notices/{notice_id}")
def public_notice_page(request: Request, notice_id: Id, principal: MaybeActor, lab: LabDep) -> Response:
    with lab.read() as s:
        notice = publicity.public_notice(s, notice_id)
        # counts only: an objection's words may name people, and the public page names nobody
        objections = publicity.objections_of(s, notice_id)
        answered = {
            "dismissed": sum(1 for o in objections if o.status == "dismissed"),
            "upheld": sum(1 for o in objections if o.status == "upheld"),
        }
    return render(
        request,
        "public/notice.html",
        notice=notice,
        answered=answered,
        can_object=principal is not None and notice.status == "open",
    )
