"""API: the airlock (出域申请, review, released files) and the model registry (in-domain predictions).

No route here returns a model's bytes: model files are registered, never released, and a file
preview is served only for files that passed the file type check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from countylab.airlock import spreadsheet
from countylab.airlock.render.store import warm_files
from countylab.airlock.service import FileChoice
from countylab.export import content_disposition
from countylab.identity.access import Principal
from countylab.serving.registry import ModelCard
from countylab.storage.airlock_models import RegisteredModel
from countylab.web.deps import Actor, LabDep
from countylab.web.params import ANY_FILE, BodyId, Count, Id, Page

if TYPE_CHECKING:
    from countylab.lab import Lab

router = APIRouter(prefix="/api", tags=["airlock"])


class FileIn(BaseModel):
    name: str
    description: str = ""
    controls: str = ""
    count_columns: list[str] = Field(default_factory=list)
    magnitude_columns: list[str] = Field(default_factory=list)
    filter: str = ""

    def choice(self) -> FileChoice:
        return FileChoice(
            self.name,
            self.description,
            self.controls,
            tuple(self.count_columns),
            tuple(self.magnitude_columns),
            self.filter,
        )


class RequestIn(BaseModel):
    job_id: BodyId
    title: str = ""
    note: str = ""
    files: list[FileIn]
    submit: bool = False


class ResubmitIn(BaseModel):
    job_id: BodyId | None = None
    files: list[FileIn] | None = None
    replies: dict[int, str] = Field(
        default_factory=dict, description="A reply to each checker comment: comment id -> text."
    )


class VoteIn(BaseModel):
    choice: str
    comment: str = ""
    role: str | None = None


class CommentIn(BaseModel):
    body: str
    file_id: BodyId | None = None


@router.get("/airlock/jobs/{job_id}/outbox")
def outbox(job_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """The selectors a job's ``countylab.yaml`` declares and how many files each takes (never
    file names or sizes: those are written by the job, and reach people only through review)."""
    with lab.read() as s:
        return lab.airlock.outbox(s, actor, job_id)


def _checked_view(lab: Lab, actor: Principal, request_id: int) -> dict[str, Any]:
    """After the submitting transaction has committed: run the automatic checks outside any
    write transaction (a worker with time and memory limits), then read the request."""
    lab.airlock.check_pending(lab.tx, request_id, read=lab.read)
    return _view(lab, actor, request_id)


def _view(lab: Lab, actor: Principal, request_id: int) -> dict[str, Any]:
    """Read a request, then record the audited view in a short write of its own."""
    with lab.read() as s:
        view = dict(lab.airlock.view(s, actor, request_id))
    lab.airlock.audit_reads(lab.tx, actor, view=request_id)
    return view


@router.post("/airlock/requests", status_code=201)
def create_request(body: RequestIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Create a request from selectors (``files[].name``: ``*``, ``logs`` or an output declared in
    countylab.yaml as ``<action>/<path>``); the lab copies the files, the developer sees a count."""
    request_id = lab.airlock.create_staged(  # files are copied before the write transaction
        lab.tx,
        lab.read,
        actor,
        body.job_id,
        [f.choice() for f in body.files],
        title=body.title,
        note=body.note,
        submit=body.submit,
    )
    return _checked_view(lab, actor, request_id)


@router.get("/airlock/requests")
def list_requests(actor: Actor, lab: LabDep, scope: str = "mine") -> dict[str, Any]:
    with lab.read() as s:
        return {"items": lab.airlock.list_requests(s, actor, scope)}


@router.get("/airlock/requests/{request_id}")
def get_request(request_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    return _view(lab, actor, request_id)


@router.get("/airlock/requests/{request_id}/state")
def request_state(request_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """The state and check status alone, for pages that wait for the automatic checks.

    Polled, so not audited as a view: it says nothing of the files."""
    with lab.read() as s:
        view = lab.airlock.view(s, actor, request_id)
    return {
        "id": request_id,
        "state": view["state"],
        "round": view["round"],
        "checks_status": view.get("checks_status"),
    }


@router.post("/airlock/requests/{request_id}/submit")
def submit(request_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        lab.airlock.submit(s, actor, request_id)
    return _checked_view(lab, actor, request_id)


@router.post("/airlock/requests/{request_id}/resubmit")
def resubmit(request_id: Id, body: ResubmitIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    files = [f.choice() for f in body.files] if body.files else None
    lab.airlock.resubmit_staged(
        lab.tx, lab.read, actor, request_id, job_id=body.job_id, choices=files, replies=body.replies
    )
    return _checked_view(lab, actor, request_id)


@router.post("/airlock/requests/{request_id}/withdraw")
def withdraw(request_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        lab.airlock.withdraw(s, actor, request_id)
        return dict(lab.airlock.view(s, actor, request_id))


@router.post("/airlock/requests/{request_id}/votes")
def vote(request_id: Id, body: VoteIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    staged = lab.airlock.stage_release(lab.read, actor, request_id) if body.choice == "approve" else {}
    try:
        with lab.tx() as s:
            lab.airlock.vote(s, actor, request_id, body.choice, body.comment, body.role, staged)
            return dict(lab.airlock.view(s, actor, request_id))
    finally:
        lab.airlock.discard_staged(staged)


@router.post("/airlock/requests/{request_id}/comments", status_code=201)
def comment(request_id: Id, body: CommentIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        c = lab.airlock.comment(s, actor, request_id, body.body, body.file_id)
        return {"id": c.id, "request_id": request_id, "file_id": c.file_id, "body": c.body}


@router.get("/airlock/files/{file_id}/preview", response_class=Response, responses=ANY_FILE)
def preview(file_id: Id, actor: Actor, lab: LabDep) -> Response:
    warm_files(lab.read, [file_id])  # any parse happens here, under no write lock
    with lab.read() as s:
        content = lab.airlock.content(s, actor, file_id, "preview")
    lab.airlock.audit_reads(lab.tx, actor, contents=[content])
    return _file_response(content, inline=True)


@router.get("/airlock/files/{file_id}/preview/pages")
def preview_page(file_id: Id, actor: Actor, lab: LabDep, page: Page = 1) -> dict[str, Any]:
    """One page of a file's complete preview (what will be released, and what will not)."""
    from countylab.airlock.render.pages import page_view

    warm_files(lab.read, [file_id])  # any parse happens here, under no write lock
    with lab.read() as s:
        content = lab.airlock.content(s, actor, file_id, "preview")
    lab.airlock.audit_reads(lab.tx, actor, contents=[content])
    assert content.rendering is not None
    return {"file_id": file_id, "name": content.name, **page_view(content.rendering, page)}


@router.get("/airlock/released")
def released(actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        return {"items": lab.airlock.released_files(s, actor)}


@router.get("/airlock/files/{file_id}/download", response_class=Response, responses=ANY_FILE)
def download(file_id: Id, actor: Actor, lab: LabDep, format: spreadsheet.Format | None = None) -> Response:
    """The released bytes as they are; ``format=xlsx|csv`` converts a released table for Excel."""
    with lab.read() as s:
        content = lab.airlock.content(s, actor, file_id, "download")
    if format is not None:
        data, name = spreadsheet.convert(content.name, content.data, format)  # 422 for non-tables
        lab.airlock.audit_reads(lab.tx, actor, contents=[content])
        return Response(
            data,
            media_type=spreadsheet.MEDIA_TYPES[format],
            headers={
                "Content-Disposition": content_disposition(name),
                "X-Content-SHA256": content.sha256,  # of the released original this was made from
                "Cache-Control": "no-store",
            },
        )
    lab.airlock.audit_reads(lab.tx, actor, contents=[content])
    return _file_response(content, inline=False)


def _file_response(content: Any, *, inline: bool) -> Response:
    from urllib.parse import quote

    disposition = "inline" if inline else "attachment"
    return Response(
        content.data,
        media_type=content.media_type,
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(content.name)}",
            "X-Content-SHA256": content.sha256,
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        },
    )


# -- models -----------------------------------------------------------------------------------
class ModelIn(BaseModel):
    job_id: BodyId
    file: str
    name: str
    inputs: list[str] = Field(
        default_factory=list,
        description="Model columns in order; may be left out when the job declared named input fields "
        "beside the model (model.joblib.countylab.json).",
    )
    outputs: list[str | dict[str, Any]] = Field(
        description="Typed outputs: 'visits:number:0..50:2', 'risk:category:low|high', or objects "
        "{name, type: number|category, lower, upper, decimals, categories}. Free text is refused."
    )
    target: str | None = Field(
        default=None, description="The training dataset's column the model predicts (memorisation tests)."
    )
    description: str = ""
    metrics_file_id: BodyId | None = None


class DecisionIn(BaseModel):
    approve: bool
    note: str = ""
    rate_per_minute: Count | None = None
    daily_quota: Count | None = None


class PredictIn(BaseModel):
    rows: list[Any]


def model_view(m: RegisteredModel, *, oversight: bool = True) -> dict[str, Any]:
    """The model card and its state; never the stored path or the bytes.

    The file's size and hash are shown only to ``oversight`` (checkers, stewards): the job wrote
    the file, so its size is a number the job chose.
    """
    return {
        "id": m.id,
        "name": m.name,
        "project_id": m.project_id,
        "job_id": m.job_id,
        "file": m.file_name,
        "format": m.format,
        "sha256": m.sha256 if oversight else None,
        "bytes": m.bytes if oversight else None,
        "state": m.state,
        "card": dict(m.card or {}),
        "rate_per_minute": m.rate_per_minute,
        "daily_quota": m.daily_quota,
        "created_at": m.created_at.isoformat(),
        "decided_at": m.decided_at.isoformat() if m.decided_at else None,
        "predict_url": f"/api/models/{m.id}/predict",
    }


@router.post("/models", status_code=201)
def register_model(body: ModelIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    card = ModelCard.parse(body.inputs, body.outputs, body.description, body.metrics_file_id, body.target)
    with lab.tx() as s:
        m = lab.models.register(s, actor, body.job_id, body.file, body.name, card)
        return model_view(m, oversight=lab.models.oversees(actor, m))


@router.get("/models")
def list_models(actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        service = lab.models
        return {
            "items": [
                model_view(m, oversight=service.oversees(actor, m)) for m in service.list_models(s, actor)
            ]
        }


@router.get("/models/{model_id}")
def get_model(model_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        m = lab.models.get(s, actor, model_id)
        return model_view(m, oversight=lab.models.oversees(actor, m))


@router.post("/models/{model_id}/decision")
def decide_model(model_id: Id, body: DecisionIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        m = lab.models.decide(
            s,
            actor,
            model_id,
            body.approve,
            body.note,
            rate_per_minute=body.rate_per_minute,
            daily_quota=body.daily_quota,
        )
        return model_view(m, oversight=lab.models.oversees(actor, m))


@router.post("/models/{model_id}/assessment")
def assess_model(model_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Run the memorisation tests on the real training data; the report is stored on the card."""
    return {"model_id": model_id, "assessment": lab.models.assess(lab.tx, actor, model_id)}


@router.post("/models/{model_id}/predict")
def predict(model_id: Id, body: PredictIn, request: Request, actor: Actor, lab: LabDep) -> dict[str, Any]:
    result: dict[str, Any] = lab.models.predict(lab.tx, actor, model_id, body.rows)
    return result
