"""API: sandbox jobs (作业) — submit code, follow its state, cancel, retry, quotas and usage.

Before review a developer sees only the fixed facts of :mod:`countylab.jobs.facts`: the state,
which lab limit stopped the job and the lab's own message, and metering in coarse buckets.
File names, sizes, logs, exit codes and fine metering are outputs: they go through the airlock.
Stewards, checkers and admins outside the project see the attempt records (:func:`sees_details`).
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from countylab.errors import TooLarge, ValidationFailed
from countylab.identity.access import Principal
from countylab.identity.roles import Role
from countylab.jobs import JobState, Quota
from countylab.jobs.facts import coarse_seconds, listing, message, minute, stop_reason
from countylab.lab import Lab
from countylab.storage.jobs_models import Job, JobAttempt
from countylab.storage.models import utcnow
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id, Limit, Offset

router = APIRouter(prefix="/api", tags=["jobs"])

_DETAIL_ROLES = frozenset({Role.admin, Role.steward, Role.checker})
ARCHIVE_MAX_BYTES = 20 * 1024 * 1024  # the stored code's own cap (CodeLimits) applies after unpacking


def _iso(ts: Any) -> str | None:
    return ts.isoformat() if ts is not None else None


def sees_details(actor: Principal, project_id: int) -> bool:
    """Full attempt records (exit codes, metering, errors, log excerpts) are for oversight roles
    outside the project: stewards, checkers and admins.  A project member never sees them
    before release, whatever other roles they hold (see :mod:`countylab.jobs.facts`)."""
    if actor.is_system:
        return True
    return project_id not in actor.project_ids and bool(actor.roles & _DETAIL_ROLES)


def attempt_view(a: JobAttempt) -> dict[str, Any]:
    """One attempt in full: for oversight roles only (:func:`sees_details`)."""
    return {
        "number": a.number,
        "state": a.state,
        "exit_code": a.exit_code,
        "error": a.error,
        "started_at": _iso(a.started_at),
        "finished_at": _iso(a.finished_at),
        "actions": [
            {k: v for k, v in act.items() if k != "missing_outputs"}
            | {"missing_outputs": list(act.get("missing_outputs") or [])}
            for act in (a.actions or [])
        ],
    }


def job_view(job: Job, attempts: list[JobAttempt] | None = None, *, full: bool = False) -> dict[str, Any]:
    """A job as its viewer may see it.  Everyone gets the fixed facts: the state, which lab
    limit stopped it and the lab's own message, the developer's own inputs (name, spec, code
    hash) and timestamps to the minute.  ``full`` (oversight roles) adds the attempt records."""
    latest = attempts[-1] if attempts else None
    acts = list(latest.actions or []) if latest is not None else []
    reason = stop_reason(job.state, acts, job.error)
    view: dict[str, Any] = {
        "id": job.id,
        "project_id": job.project_id,
        "name": job.name,
        "state": job.state,
        "stopped_by": reason.value if reason is not None else None,
        "message": message(reason),
        "priority": job.priority,
        "submitted_by": job.submitted_by,
        "attempts": job.attempts,
        "cancel_requested": job.cancel_requested,
        "code_sha256": job.code_sha256,
        "code_bytes": job.code_bytes,
        "actions": list(job.spec.get("actions", {})),
        "cpu_seconds_reserved": job.cpu_seconds_reserved,
        "created_at": _iso(job.created_at),
        "queued_at": minute(job.queued_at),
        "started_at": minute(job.started_at),
        "finished_at": minute(job.finished_at),
        "details": full,
    } | listing(job, acts, full=full)  # CPU s used, duration, declared outputs (coarse for members)
    if full:
        view |= {
            "error": job.error,
            "queued_at": _iso(job.queued_at),
            "started_at": _iso(job.started_at),
            "finished_at": _iso(job.finished_at),
            "exit_code": latest.exit_code if latest is not None else None,
            "usage": {
                "cpu_s": round(sum(float(a.get("cpu_s") or 0) for a in acts), 3),
                "wall_s": round(sum(float(a.get("wall_s") or 0) for a in acts), 3),
                "max_rss_mb": round(max((float(a.get("max_rss_mb") or 0) for a in acts), default=0.0), 1),
            },
        }
        if attempts is not None:
            view["attempt_list"] = [attempt_view(a) for a in attempts]
    return view


def job_detail(lab: Lab, s: Session, actor: Principal, job_id: int) -> dict[str, Any]:
    job = lab.jobs.service.get(s, actor, job_id)
    return job_view(
        job, lab.jobs.service.attempts(s, actor, job_id), full=sees_details(actor, job.project_id)
    )


def job_views(s: Session, actor: Principal, jobs: list[Job]) -> list[dict[str, Any]]:
    """Views of many jobs with their latest attempts (one query), for lists."""
    latest: dict[int, JobAttempt] = {}
    if jobs:
        q = select(JobAttempt).where(JobAttempt.job_id.in_([j.id for j in jobs]))
        for a in s.execute(q).scalars():
            if a.job_id not in latest or a.number > latest[a.job_id].number:
                latest[a.job_id] = a
    return [
        job_view(j, [latest[j.id]] if j.id in latest else [], full=sees_details(actor, j.project_id))
        for j in jobs
    ]


def usage_view(lab: Lab, s: Session, actor: Principal, project_id: int) -> dict[str, Any]:
    quota = lab.jobs.service.quota(s, actor, project_id)
    since = utcnow() - timedelta(days=quota.period_days)
    used = asdict(lab.jobs.service.usage_for_project(s, actor, project_id, since=since))
    if not sees_details(actor, project_id):  # metering is a channel: coarse buckets only
        used = {k: coarse_seconds(float(v)) if k.endswith("_s") else v for k, v in used.items()}
        used["max_rss_mb"] = None
    return {
        "project_id": project_id,
        "since": since.isoformat(),
        "usage": used,
        "coarse": not sees_details(actor, project_id),
        "quota": asdict(quota),
    }


@contextmanager
def saved_upload(upload: UploadFile) -> Iterator[Path]:
    """The uploaded archive in a private temporary file, refused beyond ARCHIVE_MAX_BYTES."""
    tmp = Path(tempfile.mkdtemp(prefix="countylab-submit-"))
    try:
        path = tmp / "code.archive"
        total = 0
        with open(path, "wb") as out:
            while chunk := upload.file.read(1 << 16):
                total += len(chunk)
                if total > ARCHIVE_MAX_BYTES:
                    raise TooLarge(
                        "代码压缩包超过 20 MB（数据请登记为数据集，不要放进代码）",
                        "the code archive exceeds 20 MB (register data as a dataset)",
                        reason="code_too_large",
                    )
                out.write(chunk)
        yield path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


INLINE_MAX_BYTES = 1024 * 1024


@contextmanager
def inline_folder(files: dict[str, str]) -> Iterator[Path]:
    """Small code sent as ``{relative path: text}`` (notebooks, the quick form), as a folder."""
    tmp = Path(tempfile.mkdtemp(prefix="countylab-inline-"))
    try:
        total = 0
        for name, text in files.items():
            norm = posixpath.normpath(str(name))
            if not name or name.startswith("/") or norm == ".." or norm.startswith("../") or "\0" in name:
                raise ValidationFailed(
                    f"文件名越出目录：{name}",
                    f"file name escapes the folder: {name}",
                    field="files",
                    reason="path_escape",
                )
            data = str(text).replace("\r\n", "\n").encode()
            total += len(data)
            if total > INLINE_MAX_BYTES:
                raise TooLarge(
                    "内联代码超过 1 MB，请上传压缩包",
                    "inline code exceeds 1 MB: upload an archive",
                    reason="code_too_large",
                )
            target = tmp / "code" / norm
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        yield tmp / "code"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def submit_job(
    lab: Lab,
    actor: Principal,
    project_id: int,
    *,
    upload: UploadFile | None,
    files: dict[str, str] | None,
    name: str,
    priority: int,
    hold: bool,
) -> dict[str, Any]:
    """One submission: an uploaded tar.gz/zip of the folder, or small code inline."""
    svc = lab.jobs.service
    if upload is not None and upload.filename:
        with saved_upload(upload) as archive, lab.tx() as s:
            return job_view(
                svc.submit(
                    s, actor, project_id, archive, name=name, priority=priority, hold=hold,
                    source=upload.filename,
                )
            )  # fmt: skip
    if files:
        with inline_folder(files) as folder, lab.tx() as s:
            return job_view(svc.submit(s, actor, project_id, folder, name=name, priority=priority, hold=hold))
    with lab.tx() as s:  # the permission check comes before the complaint about missing code
        svc.quota(s, actor, project_id)
    raise ValidationFailed(
        "请上传代码压缩包（tar.gz 或 zip）",
        "upload the code as a tar.gz or zip archive",
        field="file",
        reason="missing_code",
    )


def _int(value: Any, fld: str, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationFailed(f"{fld} 必须是整数", f"{fld} must be an integer", field=fld) from None


def form_files(fields: dict[str, Any]) -> dict[str, str]:
    """Form fields ``code:<path>`` hold inline files (the page's quick form)."""
    return {k[5:]: v for k, v in fields.items() if k.startswith("code:") and isinstance(v, str) and v.strip()}


@router.post("/projects/{project_id}/jobs", status_code=201)
async def submit(project_id: Id, request: Request, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Submit a job: multipart ``file`` (tar.gz or zip of the folder with ``countylab.yaml``), or
    JSON ``{"files": {"countylab.yaml": "...", "main.py": "..."}}`` for small code.  Optional
    ``name``, ``hold`` (wait for a steward), ``priority`` (admins and operators)."""
    upload: UploadFile | None = None
    files: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        found = form.get("file")
        upload = found if isinstance(found, UploadFile) else None
        files = form_files(fields)
    else:
        try:
            body = await request.json()
        except ValueError:
            raise ValidationFailed(
                "请求体不是合法的 JSON", "the body is not valid JSON", reason="bad_json"
            ) from None
        fields = body if isinstance(body, dict) else {}
        raw = fields.get("files")
        files = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    hold = str(fields.get("hold", "")).lower() in ("1", "true", "yes", "on")
    return await run_in_threadpool(
        submit_job,
        lab,
        actor,
        project_id,
        upload=upload,
        files=files,
        name=str(fields.get("name") or "")[:200],
        priority=_int(fields.get("priority"), "priority", 0),
        hold=hold,
    )


@router.get("/projects/{project_id}/jobs")
def list_jobs(
    project_id: Id,
    actor: Actor,
    lab: LabDep,
    state: JobState | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    wanted = JobState(state) if state else None
    with lab.read() as s:
        found = lab.jobs.service.list_for_project(
            s, actor, project_id, state=wanted, limit=limit, offset=offset
        )
        return {"items": job_views(s, actor, found)}


@router.get("/jobs")
def my_jobs(actor: Actor, lab: LabDep, state: JobState | None = None, limit: Limit = 100) -> dict[str, Any]:
    """Jobs of the caller's projects (every project for oversight roles)."""
    with lab.read() as s:
        found = lab.jobs.list_for(s, actor, state=JobState(state) if state else None, limit=limit)
        return {"items": job_views(s, actor, found)}


@router.get("/jobs/{job_id}")
def get_job(job_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        return job_detail(lab, s, actor, job_id)


def _change(lab: Lab, actor: Principal, job_id: int, verb: str) -> Response:
    with lab.tx() as s:
        job = lab.jobs.service.get(s, actor, job_id)
        before = (job.state, job.cancel_requested, job.attempts)
        getattr(lab.jobs.service, verb)(s, actor, job_id)
        changed = (job.state, job.cancel_requested, job.attempts) != before
        view = job_detail(lab, s, actor, job_id)
    response = JSONResponse(view)
    if not changed:  # asked for the state it is already in: nothing to audit
        response.headers["X-Countylab-Outcome"] = "unchanged"
    return response


@router.post("/jobs/{job_id}/cancel")
def cancel(job_id: Id, actor: Actor, lab: LabDep) -> Response:
    """Cancel: queued/pending jobs at once; a running job is killed within a fraction of a second."""
    return _change(lab, actor, job_id, "cancel")


@router.post("/jobs/{job_id}/retry")
def retry(job_id: Id, actor: Actor, lab: LabDep) -> Response:
    """A failed, killed or lost job goes back to the queue (a new attempt)."""
    return _change(lab, actor, job_id, "retry")


@router.post("/jobs/{job_id}/admit")
def admit(job_id: Id, actor: Actor, lab: LabDep) -> Response:
    """A steward admits a held job (its code was reviewed) into the queue."""
    return _change(lab, actor, job_id, "admit")


LOGS_ARE_OUTPUTS = {
    "zh": "日志是作业的输出，和其他输出文件一样：出域前不向开发者显示。"
    "需要日志时，把它放进出域申请（选择“日志”）由审核员审核；调试请用 countylab run 在模拟数据上运行。",
    "en": "Logs are outputs of the job like any other file: they are not shown to developers before "
    "release. To get them, put them in a release request (select 'logs') for a checker to review; "
    "to debug, use countylab run on dummy data.",
}


@router.get("/jobs/{job_id}/logs")
def logs(job_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Logs are outputs: developers get an explanation (and how to release or debug); oversight
    roles outside the project (stewards, checkers, admins) get the leakage-scanned tail."""
    with lab.read() as s:
        job = lab.jobs.service.get(s, actor, job_id)
        if not sees_details(actor, job.project_id):
            return {"job_id": job_id, "outputs": True, "message": LOGS_ARE_OUTPUTS, "streams": []}
        return {
            "job_id": job_id,
            "outputs": True,
            "message": LOGS_ARE_OUTPUTS,
            "scanned": True,
            "streams": [x.to_dict() for x in lab.jobs.log_excerpt(s, actor, job_id)],
        }


@router.get("/projects/{project_id}/usage")
def usage(project_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Metered use in the quota period and the quota itself (算力用量与配额)."""
    with lab.read() as s:
        return usage_view(lab, s, actor, project_id)


class QuotaIn(BaseModel):
    max_cpu: float = Quota.max_cpu
    max_memory_mb: int = Quota.max_memory_mb
    max_time_s: int = Quota.max_time_s
    max_gpu: int = Quota.max_gpu
    cpu_seconds: float | None = Quota.cpu_seconds
    gpu_seconds: float | None = Quota.gpu_seconds
    concurrent_jobs: int = Quota.concurrent_jobs
    period_days: int = Quota.period_days


@router.put("/projects/{project_id}/quota")
def put_quota(project_id: Id, body: QuotaIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Stewards and admins set a project's compute quota."""
    if (
        body.max_cpu <= 0
        or body.max_memory_mb <= 0
        or body.max_time_s <= 0
        or body.concurrent_jobs < 1
        or body.period_days < 1
        or body.max_gpu < 0
    ):
        raise ValidationFailed("配额数值必须为正", "quota values must be positive", reason="quota")
    with lab.tx() as s:
        lab.jobs.service.set_quota(s, actor, project_id, Quota(**body.model_dump()))
        return usage_view(lab, s, actor, project_id)
