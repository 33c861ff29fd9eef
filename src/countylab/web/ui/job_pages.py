"""Pages of the compute center: my projects' jobs, submit (upload or quick form), one job.

A developer's pages show the fixed facts of :mod:`countylab.jobs.facts` only (state, the limit
that stopped the job, the lab's message, CPU in coarse buckets, the outputs the spec declares)
and a 申请出域 button that opens the airlock's new request for the job; oversight roles outside
the project see attempts, exact metering, the outbox's files with sizes and the scanned log tail
(:func:`countylab.web.api.jobs.sees_details`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from countylab.errors import CountylabError
from countylab.i18n import translator
from countylab.identity.access import Principal, has_permission
from countylab.identity.roles import Permission, Role
from countylab.jobs.states import RETRYABLE, JobState
from countylab.storage.jobs_models import Job
from countylab.storage.models import Project
from countylab.web.api.jobs import (
    LOGS_ARE_OUTPUTS,
    form_files,
    job_detail,
    job_views,
    sees_details,
    submit_job,
    usage_view,
)
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id, QueryId
from countylab.web.ui.common import flash_redirect, form_action, lang_of, render

if TYPE_CHECKING:
    from countylab.lab import Lab

router = APIRouter(include_in_schema=False)

ACTIVE = ("pending", "queued", "running")
FINISHED = ("succeeded", "failed", "killed", "cancelled", "lost")
QUICK_SPEC = """version: 1
actions:
  main:
    run: python main.py
    datasets: []
    outputs:
      - {path: result.csv, kind: table}
    resources: {cpu: 1, memory_mb: 512, time_s: 300}
"""


def _projects(lab: Lab, actor: Principal) -> list[Project]:
    with lab.read() as s:
        q = select(Project).where(Project.id.in_(sorted(actor.project_ids))).order_by(Project.title)
        return list(s.execute(q).scalars())


@router.get("/jobs")
def jobs_page(request: Request, actor: Actor, lab: LabDep, project: QueryId = None) -> Response:
    projects = _projects(lab, actor)
    chosen = project if project in {p.id for p in projects} else (projects[0].id if projects else None)
    with lab.read() as s:
        jobs = job_views(s, actor, lab.jobs.list_for(s, actor))
        titles = {pid: title for pid, title in s.execute(select(Project.id, Project.title))}
        meter = usage_view(lab, s, actor, chosen) if chosen is not None else None
    t = translator(lang_of(request))
    for j in jobs:
        j["cpu_text"], j["duration_text"] = cpu_text(j), duration_text(j, t)
    return render(
        request,
        "jobs_list.html",
        jobs=jobs,
        projects=projects,
        chosen=chosen,
        titles=titles,
        meter=meter,
        can_submit=has_permission(actor, Permission.job_submit) and bool(projects),
        quick_spec=QUICK_SPEC,
        refresh=any(j["state"] in ACTIVE for j in jobs),
    )


@router.post("/projects/{project_id}/jobs")
async def submit_page(request: Request, project_id: Id, actor: Actor, lab: LabDep) -> Response:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    found = form.get("file")
    upload = found if isinstance(found, UploadFile) else None
    t = translator(lang_of(request))
    back = f"/jobs?project={project_id}"
    try:
        view = await run_in_threadpool(
            submit_job,
            lab,
            actor,
            project_id,
            upload=upload,
            files=form_files(fields),
            name=str(fields.get("name") or "")[:200],
            priority=0,
            hold=False,
        )
    except CountylabError as exc:
        error = exc

        def fail() -> None:
            raise error

        return await run_in_threadpool(form_action, request, back, fail, "flash.saved")
    return flash_redirect(f"/jobs/{view['id']}", t("jobs.submitted", id=view["id"]))


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: Id, actor: Actor, lab: LabDep) -> Response:
    center = lab.jobs
    member = False
    with lab.read() as s:
        job = job_detail(lab, s, actor, job_id)
        project = s.get(Project, job["project_id"])
        full = sees_details(actor, job["project_id"])
        logs = center.log_excerpt(s, actor, job_id) if full else []
        orm_job = center.service.get(s, actor, job_id)
        spec_yaml = orm_job.spec_yaml
        member = job["project_id"] in actor.project_ids
        can_release = (
            member and job["state"] == "succeeded" and has_permission(actor, Permission.release_create)
        )
        outputs = output_rows(lab, s, actor, orm_job, job, full=full, counts=can_release)
    runner = has_permission(actor, Permission.job_submit) and member
    return render(
        request,
        "job_detail.html",
        job=job,
        project=project,
        logs=logs,
        full=full,
        logs_note=LOGS_ARE_OUTPUTS,
        steps=steps(job["state"]),
        spec_yaml=spec_yaml,
        refresh=job["state"] in ACTIVE,
        can_cancel=job["state"] in ACTIVE and (runner or bool(actor.roles & {Role.admin, Role.operator})),
        can_retry=runner and JobState(job["state"]) in RETRYABLE,
        can_admit=job["state"] == "pending" and has_permission(actor, Permission.grant_manage),
        can_release=can_release,
        outputs=outputs,
        cpu=cpu_text(job),
        duration=duration_text(job, translator(lang_of(request))),
    )


def output_rows(
    lab: Lab, s: Session, actor: Principal, job: Job, view: dict[str, Any], *, full: bool, counts: bool
) -> dict[str, Any]:
    """The job page's output files.  Oversight roles (``full``) see what the outbox holds: name,
    kind, size.  A project member sees the outputs the spec declares (their own words) and, for a
    finished job, how many files each would take: names and sizes the job chose are outputs
    themselves and reach the member only through the airlock (:mod:`countylab.jobs.facts`)."""
    declared = {o["selector"]: o["kind"] for o in view.get("outputs") or []}
    if full:
        from countylab.airlock.outbox import list_outbox

        files = [
            {
                "name": e.name,
                "kind": declared.get(e.name) or _kind_of(e.name),
                "size": e.size,
                "size_text": size_text(e.size),
            }
            for e in (list_outbox(s, job) if view["state"] in FINISHED else [])
        ]
        return {"full": True, "files": files, "declared": view.get("outputs") or []}
    found: dict[str, int] = {}
    if counts:
        try:
            found = dict(lab.airlock.outbox(s, actor, job.id).get("counts") or {})
        except CountylabError:
            found = {}
    return {
        "full": False,
        "declared": [o | {"count": found.get(o["selector"])} for o in view.get("outputs") or []],
        "total": found.get("*"),
    }


def size_text(size: int) -> str:
    """Bytes as people read them in a file manager: 512 B, 3.4 KB, 1.2 MB."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _kind_of(name: str) -> str:
    """Kinds of the files no spec declares: logs and the output library's sidecars."""
    from countylab.output.sidecar import is_sidecar

    if is_sidecar(name):
        return "sidecar"
    return "log" if name.startswith("logs/") or "/logs/" in name else ""


def cpu_text(job: dict[str, Any]) -> str:
    """``12.3 s`` exact (oversight roles) or ``≤ 60 s`` (a coarse bucket, project members)."""
    used = float(job.get("cpu_s") or 0)
    if job.get("cpu_coarse", True):
        return f"≤ {used:.0f} s" if used else "0 s"
    return f"{used:.1f} s"


def duration_text(job: dict[str, Any], t: Callable[..., str]) -> str:
    seconds = job.get("duration_s")
    if seconds is None:
        return "—"
    if job.get("cpu_coarse", True):
        minutes = int(float(seconds) // 60)
        return t("jobs.under_a_minute") if minutes == 0 else t("jobs.minutes", n=minutes)
    return f"{float(seconds):.1f} s"


def steps(state: str) -> list[tuple[str, str]]:
    """The job's path through the state machine, for the page: done, current, still ahead."""
    path = ["pending", "queued", "running"] if state == "pending" else ["queued", "running"]
    seq = [*path, state if state not in path else "succeeded"]
    at = seq.index(state)
    return [(st, "current" if i == at else "done" if i < at else "") for i, st in enumerate(seq)]


def _change(request: Request, lab: Lab, actor: Principal, job_id: int, verb: str) -> RedirectResponse:
    center = lab.jobs
    changed: list[bool] = []

    def act() -> None:
        with lab.tx() as s:
            job = center.service.get(s, actor, job_id)
            before = (job.state, job.cancel_requested, job.attempts)
            getattr(center.service, verb)(s, actor, job_id)
            changed.append((job.state, job.cancel_requested, job.attempts) != before)

    response = form_action(request, f"/jobs/{job_id}", act, f"jobs.flash_{verb}")
    if changed == [False]:
        response.headers["X-Countylab-Outcome"] = "unchanged"
    return response


@router.post("/jobs/{job_id}/cancel")
def cancel_page(request: Request, job_id: Id, actor: Actor, lab: LabDep) -> Response:
    return _change(request, lab, actor, job_id, "cancel")


@router.post("/jobs/{job_id}/retry")
def retry_page(request: Request, job_id: Id, actor: Actor, lab: LabDep) -> Response:
    return _change(request, lab, actor, job_id, "retry")


@router.post("/jobs/{job_id}/admit")
def admit_page(request: Request, job_id: Id, actor: Actor, lab: LabDep) -> Response:
    return _change(request, lab, actor, job_id, "admit")
