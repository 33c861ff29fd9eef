"""API: data-use applications (用数申请) from the applicant's side, their PDF attachments, and
the accreditation records (培训合格) of safe people."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from countylab.lab import Lab
from countylab.labels import BEIJING
from countylab.operations import accreditation, application_view, applications, attachments
from countylab.operations.applications import COMMITMENTS, PURPOSES, ApplicationInput, RequestedDataset
from countylab.web.deps import Actor, LabDep
from countylab.web.params import ANY_FILE, BodyId, Id

router = APIRouter(prefix="/api", tags=["applications"])


def _lang(request: Request) -> str:
    return str(getattr(request.state, "lang", "zh-CN"))


def today(lab: Lab) -> date:
    """The lab's date in Beijing (terms, windows and accreditations are Beijing dates)."""
    return lab.clock().astimezone(BEIJING).date()


class DatasetIn(BaseModel):
    dataset_id: BodyId
    columns: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=500)


class ApplicationIn(BaseModel):
    scenario_id: BodyId
    title: str = Field(max_length=200)
    purpose: str = Field(default="", max_length=20)
    datasets: list[DatasetIn] = Field(default_factory=list, max_length=100)
    channels: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list, max_length=10)
    member_ids: list[BodyId] = Field(default_factory=list, max_length=100)
    starts_on: date | None = None
    ends_on: date | None = None
    expected_outputs: str = Field(default="", max_length=20_000)
    commitments: list[Annotated[str, Field(max_length=40)]] = Field(default_factory=list, max_length=50)

    def to_input(self) -> ApplicationInput:
        return ApplicationInput(
            scenario_id=self.scenario_id,
            title=self.title,
            purpose=self.purpose,
            datasets=tuple(
                RequestedDataset(d.dataset_id, tuple(d.columns) if d.columns is not None else None)
                for d in self.datasets
            ),
            channels=tuple(self.channels),
            member_ids=tuple(self.member_ids),
            starts_on=self.starts_on,
            ends_on=self.ends_on,
            expected_outputs=self.expected_outputs,
            commitments=tuple(self.commitments),
        )


class ReasonIn(BaseModel):
    reason: str = Field(default="", max_length=2000)


class AccreditationIn(BaseModel):
    user_id: BodyId
    course: str = Field(max_length=200)
    certificate_no: str = Field(default="", max_length=60)
    passed_on: date
    expires_on: date


@router.get("/application-terms")
def application_terms(request: Request, actor: Actor) -> dict[str, Any]:
    """The commitments (承诺书) to tick, the purpose types and the channels, with their names."""
    lang = _lang(request)
    return {
        "commitments": [{"code": c, "text": applications.label(COMMITMENTS, c, lang)} for c in COMMITMENTS],
        "purposes": [{"code": c, "name": applications.label(PURPOSES, c, lang)} for c in PURPOSES],
        "channels": [
            {"code": c, "name": applications.label(application_view.CHANNEL_NAMES, c, lang)}
            for c in application_view.CHANNEL_NAMES
        ],
        "max_term_days": applications.MAX_TERM_DAYS,
    }


@router.get("/applications")
def list_applications(
    request: Request,
    actor: Actor,
    lab: LabDep,
    status: Annotated[str, Query(max_length=20)] = "",
    mine: bool = False,
) -> dict[str, Any]:
    """The applications the caller may read, newest change first."""
    lang = _lang(request)
    with lab.read() as s:
        found = applications.list_for(s, actor, status=status, mine=mine)
        return {"items": [application_view.summary(s, a, lang) for a in found]}


@router.post("/applications", status_code=201)
def create(request: Request, body: ApplicationIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """A new draft (numbered SQ-YYYY-NNNN)."""
    day = today(lab)
    with lab.tx() as s:
        app = applications.create(s, actor, body.to_input(), today=day)
        return application_view.full(s, app, day, _lang(request))


@router.get("/applications/{application_id}")
def get_application(request: Request, application_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    day = today(lab)
    with lab.read() as s:
        return application_view.full(s, applications.get(s, actor, application_id), day, _lang(request))


@router.put("/applications/{application_id}")
def update(
    request: Request, application_id: Id, body: ApplicationIn, actor: Actor, lab: LabDep
) -> dict[str, Any]:
    """Replace a draft's (or a returned application's) fields."""
    day = today(lab)
    with lab.tx() as s:
        app = applications.update(s, actor, application_id, body.to_input(), today=day)
        return application_view.full(s, app, day, _lang(request))


@router.post("/applications/{application_id}/submit")
def submit(request: Request, application_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """draft → submitted, or returned → submitted (resubmission)."""
    day = today(lab)
    with lab.tx() as s:
        app = applications.submit(s, actor, application_id, today=day)
        return application_view.full(s, app, day, _lang(request))


@router.post("/applications/{application_id}/withdraw")
def withdraw(
    request: Request, application_id: Id, body: ReasonIn, actor: Actor, lab: LabDep
) -> dict[str, Any]:
    day = today(lab)
    with lab.tx() as s:
        app = applications.withdraw(s, actor, application_id, body.reason)
        return application_view.full(s, app, day, _lang(request))


@router.post("/applications/{application_id}/renew", status_code=201)
def renew(request: Request, application_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """A new draft renewing an authorised application, prefilled."""
    day = today(lab)
    with lab.tx() as s:
        app = applications.start_renewal(s, actor, application_id, today=day)
        return application_view.full(s, app, day, _lang(request))


@router.post("/applications/{application_id}/attachments", status_code=201)
def attach(
    application_id: Id, file: Annotated[UploadFile, File()], actor: Actor, lab: LabDep
) -> dict[str, Any]:
    """A PDF attachment (real PDFs only, at most 20 MB)."""
    content = file.file.read(attachments.MAX_BYTES + 1)
    with lab.tx() as s:
        att = attachments.attach(
            s,
            actor,
            application_id,
            filename=file.filename or "attachment.pdf",
            content=content,
            data_dir=lab.settings.data_dir,
        )
        return {"id": att.id, "filename": att.filename, "sha256": att.sha256, "size": att.size}


@router.get("/applications/{application_id}/attachments/{attachment_id}", responses=ANY_FILE)
def download_attachment(application_id: Id, attachment_id: Id, actor: Actor, lab: LabDep) -> FileResponse:
    """The attachment's PDF, for those who may read the application (others: 403, audited)."""
    with lab.read() as s:
        _, att, path = attachments.open_for(s, actor, application_id, attachment_id, lab.settings.data_dir)
        s.expunge(att)
    with lab.tx() as s:  # who read which attachment: audited, in its own short unit of work
        attachments.record_download(s, actor, application_id, att, via="api")
    return FileResponse(path, media_type="application/pdf", filename=att.filename)


@router.get("/accreditations")
def list_accreditations(actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Every training record, soonest expiry first, with its state (current, expiring, expired)."""
    day = today(lab)
    with lab.read() as s:
        return {"items": [accreditation.view(a, u, day) for a, u in accreditation.list_all(s, actor)]}


@router.post("/accreditations", status_code=201)
def record_accreditation(body: AccreditationIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    day = today(lab)
    with lab.tx() as s:
        acc = accreditation.record(
            s,
            actor,
            user_id=body.user_id,
            course=body.course,
            certificate_no=body.certificate_no,
            passed_on=body.passed_on,
            expires_on=body.expires_on,
        )
        from countylab.storage.models import User

        user = s.get(User, acc.user_id)
        assert user is not None
        return accreditation.view(acc, user, day)
