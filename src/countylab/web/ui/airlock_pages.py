"""Pages of the airlock (出域审核) and the model registry (模型): request form, checker's review
page (preview, check results, ledger warnings, blind vote), released files, models with a
"try it" form.  Every action is a form posting to a thin route that calls one service method."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from countylab.airlock import spreadsheet
from countylab.airlock.release import FileContent
from countylab.airlock.render.store import warm_files, warm_request
from countylab.airlock.service import FileChoice
from countylab.errors import CountylabError, PermissionDenied, ValidationFailed
from countylab.identity.access import has_permission
from countylab.identity.roles import Permission
from countylab.serving.batch import records_from_upload
from countylab.serving.registry import MAX_ROWS, ModelCard
from countylab.serving.schema import InputSchema
from countylab.web.api.airlock import _file_response, model_view
from countylab.web.api.airlock import download as api_download
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id, Page
from countylab.web.ui.common import form_action, lang_of, render

router = APIRouter(include_in_schema=False)


def _split(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.replace("，", ",").split(",") if x.strip())


@router.get("/airlock")
def airlock_home(request: Request, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        mine = lab.airlock.list_requests(s, actor, "mine")
        queue = (
            lab.airlock.list_requests(s, actor, "queue")
            if has_permission(actor, Permission.release_review)
            else []
        )
    return render(
        request,
        "airlock.html",
        mine=mine,
        queue=queue,
        can_create=has_permission(actor, Permission.release_create),
    )


@router.get("/airlock/new")
def new_request(request: Request, actor: Actor, lab: LabDep, job_id: str = "") -> Response:
    with lab.read() as s:
        jobs = lab.airlock.jobs_with_outbox(s, actor)
        outbox = lab.airlock.outbox(s, actor, int(job_id)) if job_id.isdigit() else None
    return render(request, "airlock_new.html", jobs=jobs, job_id=job_id, outbox=outbox)


@router.post("/airlock/requests")
async def create_request(request: Request, actor: Actor, lab: LabDep) -> Response:
    form = await request.form()
    job = str(form.get("job_id", ""))
    back = f"/airlock/new?job_id={job}"
    created: dict[str, int] = {}

    def act() -> None:
        if not job.isdigit():
            raise ValidationFailed("请选择作业", "choose a job", reason="job")
        choices = [  # selectors from countylab.yaml, never outbox file names
            FileChoice(
                str(name),
                str(form.get(f"description_{i}", "")),
                str(form.get(f"controls_{i}", "")),
                _split(str(form.get(f"count_columns_{i}", ""))),
                (),
                str(form.get(f"filter_{i}", "")),
            )
            for i, name in enumerate(form.getlist("files_all"))
            if str(name) in {str(v) for v in form.getlist("files")}
        ]
        created["id"] = lab.airlock.create_staged(  # files copied before the write transaction
            lab.tx,
            lab.read,
            actor,
            int(job),
            choices,
            title=str(form.get("title", "")),
            note=str(form.get("note", "")),
            submit=bool(form.get("submit_now")),
        )
        lab.airlock.check_pending(lab.tx, created["id"], read=lab.read)  # after the commit

    # the transaction and the checks' worker must not block the event loop
    response = await run_in_threadpool(form_action, request, back, act, "airlock.flash.created")
    if "id" in created:
        response.headers["location"] = f"/airlock/requests/{created['id']}"
    return response


@router.get("/airlock/requests/{request_id}")
def request_page(
    request: Request, request_id: Id, actor: Actor, lab: LabDep, resubmit_job: str = ""
) -> Response:
    warm_request(lab.read, request_id)  # previews are parsed (if ever) before any transaction
    with lab.read() as s:
        view = lab.airlock.view(s, actor, request_id)
        previews: dict[int, str] = {}
        tables: dict[int, list[dict[str, Any]]] = {}  # rows: line number, cells, flags per cell
        full_previews: dict[int, int] = {}  # file id -> pages of its complete preview
        previewed: list[FileContent] = []
        if view["viewer"]["reviewer"] and view["checks_status"] != "fail":
            for f in view["files"]:
                if f["kind"] is None:
                    continue
                content = lab.airlock.content(s, actor, f["id"], "preview")
                previewed.append(content)
                first = first_page(content)
                full_previews[f["id"]] = first["page_count"]
                rows = [r["cells"] for r in first["section"]["rows"]]
                if first["section"]["kind"] == "table":
                    tables[f["id"]] = flag_cells(first["section"]["rows"], f.get("checks") or [])
                elif first["section"]["kind"] in ("text", "source"):
                    previews[f["id"]] = "\n".join(r[0] for r in rows)
        jobs = (  # a resubmission may take the files of a re-run job of the same project
            [j for j in lab.airlock.jobs_with_outbox(s, actor) if j.project_id == view["project_id"]]
            if "resubmit" in view["viewer"]["events"]
            else []
        )
        outbox: dict[str, Any] | None = None  # the chosen job's selectors, for the new file list
        current: list[str] = []
        if jobs:
            chosen = int(resubmit_job) if resubmit_job.isdigit() else view["job_id"]
            if chosen not in {j.id for j in jobs}:
                chosen = view["job_id"]
            outbox = lab.airlock.outbox(s, actor, chosen)
            current = lab.airlock.current_selectors(s, actor, request_id)
    lab.airlock.audit_reads(lab.tx, actor, view=request_id, contents=previewed)
    return render(
        request,
        "airlock_request.html",
        r=view,
        jobs=jobs,
        outbox=outbox,
        current=current,
        previews=previews,
        tables=tables,
        full_previews=full_previews,
        en=lang_of(request).startswith("en"),
    )


def flag_cells(rows: list[dict[str, Any]], checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first rows of a table with the checks' findings on their cells: a checker sees which
    cell is under the threshold or recoverable, not only that one is somewhere."""
    found: dict[int, dict[str, str]] = {}  # line -> column (or "*" for the whole row) -> rule
    for c in checks:
        if c.get("status") == "pass":
            continue
        for cell in (c.get("details") or {}).get("cells") or []:
            if isinstance(cell, dict) and isinstance(cell.get("line"), int):
                column = str(cell.get("column") if cell.get("column") is not None else "*")
                found.setdefault(cell["line"], {})[column] = str(cell.get("rule") or c.get("check") or "")
    header = [str(x) for x in rows[0]["cells"]] if rows else []
    out = []
    for r in rows:
        marks = found.get(int(r.get("number") or 0), {})
        flags = [
            marks.get(header[i] if i < len(header) else "", marks.get(str(i), ""))
            for i in range(len(r["cells"]))
        ]
        out.append(
            {"number": r.get("number"), "cells": r["cells"], "flags": flags, "row_flag": marks.get("*", "")}
        )
    return out


def first_page(content: Any) -> dict[str, Any]:
    """Page 1 of a file's complete preview, shown inline; the rest is one link away."""
    from countylab.airlock.render.pages import page_view

    return page_view(content.rendering, 1)


def _act(request: Request, request_id: int, fn: Any, ok: str) -> Response:
    return form_action(request, f"/airlock/requests/{request_id}", fn, ok)


@router.post("/airlock/requests/{request_id}/submit")
def submit(request: Request, request_id: Id, actor: Actor, lab: LabDep) -> Response:
    def act() -> None:
        with lab.tx() as s:
            lab.airlock.submit(s, actor, request_id)
        lab.airlock.check_pending(lab.tx, request_id, read=lab.read)  # after the commit

    return _act(request, request_id, act, "airlock.flash.submitted")


@router.post("/airlock/requests/{request_id}/resubmit")
async def resubmit(request: Request, request_id: Id, actor: Actor, lab: LabDep) -> Response:
    """The new round: the job, the selectors ticked (files removed or added) and a reply to each
    checker comment (``reply.<comment id>``)."""
    form = await request.form()
    job_id = str(form.get("job_id") or "")
    selectors = [str(v) for v in form.getlist("selector") if str(v).strip()]
    replies = {
        int(str(k)[6:]): str(v)
        for k, v in form.items()
        if str(k).startswith("reply.") and str(k)[6:].isdigit() and str(v).strip()
    }

    def act() -> None:
        chosen = int(job_id) if job_id.isdigit() else None
        choices = None
        if selectors:
            with lab.read() as s:
                choices = lab.airlock.choices_for(s, actor, request_id, selectors)
        lab.airlock.resubmit_staged(
            lab.tx, lab.read, actor, request_id, job_id=chosen, choices=choices, replies=replies
        )
        lab.airlock.check_pending(lab.tx, request_id, read=lab.read)  # after the commit

    return await run_in_threadpool(_act, request, request_id, act, "airlock.flash.submitted")


@router.post("/airlock/requests/{request_id}/withdraw")
def withdraw(request: Request, request_id: Id, actor: Actor, lab: LabDep) -> Response:
    def act() -> None:
        with lab.tx() as s:
            lab.airlock.withdraw(s, actor, request_id)

    return _act(request, request_id, act, "airlock.flash.withdrawn")


@router.post("/airlock/requests/{request_id}/votes")
def vote(
    request: Request,
    request_id: Id,
    actor: Actor,
    lab: LabDep,
    choice: Annotated[str, Form()],
    comment: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
) -> Response:
    def act() -> None:
        staged = lab.airlock.stage_release(lab.read, actor, request_id) if choice == "approve" else {}
        try:  # the released files are regenerated above, the transaction only moves them
            with lab.tx() as s:
                lab.airlock.vote(s, actor, request_id, choice, comment, role or None, staged)
        finally:
            lab.airlock.discard_staged(staged)

    return _act(request, request_id, act, "airlock.flash.voted")


@router.post("/airlock/requests/{request_id}/comments")
def comment(
    request: Request,
    request_id: Id,
    actor: Actor,
    lab: LabDep,
    body: Annotated[str, Form()],
    file_id: Annotated[str, Form()] = "",
) -> Response:
    def act() -> None:
        with lab.tx() as s:
            lab.airlock.comment(s, actor, request_id, body, int(file_id) if file_id.isdigit() else None)

    return _act(request, request_id, act, "airlock.flash.commented")


@router.get("/airlock/released")
def released_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        files = lab.airlock.released_files(s, actor)
    return render(request, "airlock_released.html", files=files)


@router.get("/airlock/files/{file_id}/download")
def download(file_id: Id, actor: Actor, lab: LabDep, format: spreadsheet.Format | None = None) -> Response:
    return api_download(file_id, actor, lab, format)


@router.get("/airlock/files/{file_id}/preview")
def preview(file_id: Id, actor: Actor, lab: LabDep) -> Response:
    warm_files(lab.read, [file_id])  # any parse happens here, under no write lock
    with lab.read() as s:
        content = lab.airlock.content(s, actor, file_id, "preview")
    lab.airlock.audit_reads(lab.tx, actor, contents=[content])
    return _file_response(content, inline=True)


@router.get("/airlock/files/{file_id}/view")
def preview_page(request: Request, file_id: Id, actor: Actor, lab: LabDep, page: Page = 1) -> Response:
    """The complete, paged preview of one file: every sheet, row, line, comment and property."""
    from countylab.airlock.render.pages import page_view

    warm_files(lab.read, [file_id])  # any parse happens here, under no write lock
    with lab.read() as s:
        content = lab.airlock.content(s, actor, file_id, "preview")
    lab.airlock.audit_reads(lab.tx, actor, contents=[content])
    assert content.rendering is not None
    view = page_view(content.rendering, page)
    return render(
        request,
        "airlock_preview.html",
        p=view,
        file_id=file_id,
        name=content.name,
        en=lang_of(request).startswith("en"),
    )


# -- models -----------------------------------------------------------------------------------
@router.get("/models")
def models_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        models = [
            model_view(m, oversight=lab.models.oversees(actor, m)) for m in lab.models.list_models(s, actor)
        ]
        jobs = (
            lab.airlock.jobs_with_outbox(s, actor) if has_permission(actor, Permission.model_register) else []
        )
    return render(
        request,
        "models.html",
        models=models,
        jobs=jobs,
        can_register=has_permission(actor, Permission.model_register),
    )


@router.post("/models")
def register_model(
    request: Request,
    actor: Actor,
    lab: LabDep,
    job_id: Annotated[str, Form()],
    file: Annotated[str, Form()],
    name: Annotated[str, Form()],
    inputs: Annotated[str, Form()] = "",  # empty when the job declared named fields beside the model
    outputs: Annotated[str, Form()] = "",
    target: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    metrics_file_id: Annotated[str, Form()] = "",
) -> Response:
    created: dict[str, int] = {}

    def act() -> None:
        card = ModelCard.parse(
            _split(inputs),
            [o for o in outputs.replace("\r", "").split("\n") if o.strip()],
            description,
            int(metrics_file_id) if metrics_file_id.isdigit() else None,
            target,
        )
        if not job_id.isdigit():
            raise ValidationFailed("请选择作业", "choose a job", reason="job")
        with lab.tx() as s:
            created["id"] = lab.models.register(s, actor, int(job_id), file.strip(), name, card).id

    response = form_action(request, "/models", act, "model.flash.registered")
    if "id" in created:
        response.headers["location"] = f"/models/{created['id']}"
    return response


def _example_rows(card: dict[str, Any]) -> str:
    """The JSON a caller would send: named fields with words where the card has a schema."""
    schema = InputSchema.from_card(card)
    if schema is not None:
        return json.dumps([schema.example()], ensure_ascii=False)
    return json.dumps([[0] * len(card.get("inputs", []))])


@router.get("/models/{model_id}")
def model_page(request: Request, model_id: Id, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        m = lab.models.get(s, actor, model_id)
        view = model_view(m, oversight=lab.models.oversees(actor, m))
        can_decide = lab.models._may_decide(actor, m) and m.state == "pending"
        can_call = lab.models._caller(s, actor, m) is not None
    return render(
        request,
        "model.html",
        m=view,
        can_decide=can_decide,
        can_call=can_call,
        result=None,
        records=[],
        rows_json=_example_rows(view["card"]),
        example_json=_example_rows(view["card"]),
        values={},
    )


@router.post("/models/{model_id}/decision")
def decide(
    request: Request,
    model_id: Id,
    actor: Actor,
    lab: LabDep,
    approve: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
    rate_per_minute: Annotated[str, Form()] = "",
    daily_quota: Annotated[str, Form()] = "",
) -> Response:
    def act() -> None:
        with lab.tx() as s:
            lab.models.decide(
                s,
                actor,
                model_id,
                approve == "1",
                note,
                rate_per_minute=int(rate_per_minute) if rate_per_minute.isdigit() else None,
                daily_quota=int(daily_quota) if daily_quota.isdigit() else None,
            )

    return form_action(request, f"/models/{model_id}", act, "model.flash.decided")


@router.post("/models/{model_id}/assessment")
def assess(request: Request, model_id: Id, actor: Actor, lab: LabDep) -> Response:
    def act() -> None:
        lab.models.assess(lab.tx, actor, model_id)

    return form_action(request, f"/models/{model_id}", act, "model.flash.assessed")


@router.post("/models/{model_id}/predict")
async def try_model(request: Request, model_id: Id, actor: Actor, lab: LabDep) -> Response:
    """One record from the field form, a JSON array, or a CSV/XLSX of records (batch)."""
    async with request.form() as form:
        mode = str(form.get("mode") or "json")
        rows = str(form.get("rows") or "")
        values = {
            str(k)[2:]: str(v) for k, v in form.items() if str(k).startswith("f.") and isinstance(v, str)
        }
        upload = form.get("file")
        data = await upload.read() if isinstance(upload, UploadFile) and upload.filename else b""
        upload_name = upload.filename if isinstance(upload, UploadFile) and upload.filename else ""
    return await run_in_threadpool(
        _try_model, request, model_id, actor, lab, mode, rows, values, upload_name, data
    )


def _try_model(
    request: Request,
    model_id: int,
    actor: Any,
    lab: Any,
    mode: str,
    rows: str,
    values: dict[str, str],
    upload_name: str,
    data: bytes,
) -> Response:
    result: dict[str, Any] | None = None
    error = ""
    records: list[Any] = []
    with lab.read() as s:
        card = dict(lab.models.get(s, actor, model_id).card or {})
    schema = InputSchema.from_card(card)
    try:
        if mode == "file" and schema is not None:
            records = records_from_upload(upload_name, data, schema, MAX_ROWS)
        elif mode == "fields" and schema is not None:
            records = [{f.name: values.get(f.name, "") for f in schema.fields}]
        else:
            parsed = json.loads(rows)
            if not isinstance(parsed, list):
                raise ValidationFailed("请输入 JSON 数组", "enter a JSON array", reason="rows")
            records = parsed
        result = lab.models.predict(lab.tx, actor, model_id, records)
    except ValueError:
        error = "JSON"
    except PermissionDenied:
        raise  # the error handler records the denial and shows the refusal page
    except CountylabError as exc:
        error = exc.message(lang_of(request))
    with lab.read() as s:
        m = lab.models.get(s, actor, model_id)
        view = model_view(m, oversight=lab.models.oversees(actor, m))
        can_decide = lab.models._may_decide(actor, m) and m.state == "pending"
    response = render(
        request,
        "model.html",
        m=view,
        can_decide=can_decide,
        can_call=True,
        result=result,
        records=records if result and all(isinstance(r, dict) for r in records) else [],
        error=error,
        rows_json=rows or _example_rows(view["card"]),
        example_json=_example_rows(view["card"]),
        values=values,
        status_code=200 if result else 422,
    )
    if result is None:
        response.headers["X-Countylab-Outcome"] = "refused"
    return response
