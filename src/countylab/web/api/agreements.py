"""API: agreements (授权协议), their signatures and stamped copies, authorisations (授权备案),
the steward's suspend/resume/revoke and the disclosure report (授权信息披露)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Request, Response, UploadFile
from pydantic import BaseModel, Field

from countylab.export import content_disposition
from countylab.identity.access import authorize
from countylab.identity.login import LoginPolicy
from countylab.identity.roles import Permission
from countylab.operations import agreements as agr
from countylab.operations import authorisations as auths
from countylab.operations import disclosure
from countylab.operations.enforcement import beijing_today
from countylab.operations.expiry import stop_jobs_with
from countylab.operations.reauth import confirm_password
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id

router = APIRouter(prefix="/api", tags=["agreements"])
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_SCAN = agr.MAX_ATTACHMENT


class DraftIn(BaseModel):
    extra_clauses: str = Field(default="", max_length=4000)
    replace_signed: bool = False  # a party has signed: make a new version anyway (both sign again)


class SignIn(BaseModel):
    sha256: str = Field(min_length=64, max_length=64)  # of the exact PDF bytes the signer read
    password: str = Field(min_length=1, max_length=200)  # asked again: an e-signature confirmation


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


def agreement_payload(s: Any, a: Any) -> dict[str, Any]:
    body = agr.view(s, a)
    body["versions"] = [
        {"id": v.id, "version": v.version, "status": v.status, "sha256": v.sha256}
        for v in agr.versions(s, a.application_id)
    ]
    auth = None
    app = agr.application(s, a.application_id)
    if app.project_id is not None:
        found = auths.for_project(s, app.project_id)
        auth = auths.view(s, found) if found else None
    body["authorisation"] = auth
    body["application_number"] = app.number
    body["application_status"] = app.status
    return body


@router.get("/applications/{approved_application_id}/agreement")
def current_agreement(approved_application_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """The application's newest agreement version (with every version listed).  (the path names the
    application ``approved_application_id``, apart from the application routes' own names.)"""
    application_id = approved_application_id
    with lab.read() as s:
        app = agr.application(s, application_id)
        agr.require_read(s, actor, app)
        a = agr.current(s, application_id)
        if a is None:
            from countylab.errors import NotFound

            raise NotFound(f"申请 {app.number} 还没有协议", f"Application {app.number} has no agreement yet")
        return agreement_payload(s, a)


@router.post("/applications/{approved_application_id}/agreement", status_code=201)
def draft(approved_application_id: Id, body: DraftIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Operator: draft the agreement of an approved application (a redraft is version n+1)."""
    application_id = approved_application_id
    with lab.tx() as s:
        a = agr.draft(
            s,
            actor,
            application_id,
            extra_clauses=body.extra_clauses,
            replace_signed=body.replace_signed,
            now=lab.clock(),
        )
        return agreement_payload(s, a)


@router.get("/agreements/{agreement_id}")
def show(agreement_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        a = agr.get(s, agreement_id)
        agr.require_read(s, actor, agr.application(s, a.application_id))
        return agreement_payload(s, a)


def pdf_response(lab: Any, actor: Any, agreement_id: int) -> Response:
    with lab.read() as s:
        a = agr.get(s, agreement_id)
        agr.require_read(s, actor, agr.application(s, a.application_id))
        body, name, digest = bytes(a.pdf), f"{a.number}.pdf", a.sha256
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": content_disposition(name), "X-Countylab-SHA256": digest},
    )


@router.get("/agreements/{agreement_id}/pdf")
def download(agreement_id: Id, actor: Actor, lab: LabDep) -> Response:
    """The exact bytes that are signed; their SHA-256 is in the X-Countylab-SHA256 header."""
    return pdf_response(lab, actor, agreement_id)


def sign_with_password(
    lab: Any, request: Request, actor: Any, agreement_id: int, *, sha256: str, password: str
) -> agr.Signed:
    authorize(actor, Permission.agreement_sign, target=f"agreement:{agreement_id}")  # before the password
    address = request.client.host if request.client else "?"
    confirmed = confirm_password(
        lab.tx, lab.read, LoginPolicy.of(lab.settings), actor, password=password, address=address
    )
    with lab.tx() as s:
        return agr.sign(s, actor, agreement_id, sha256=sha256, confirmed=confirmed, now=lab.clock())


@router.post("/agreements/{agreement_id}/sign")
def sign(agreement_id: Id, body: SignIn, request: Request, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Sign as your party (the applicant's signer or the platform's operator), password asked again.
    The second signature puts the authorisation in force in the same transaction."""
    done = sign_with_password(lab, request, actor, agreement_id, sha256=body.sha256, password=body.password)
    return {
        "agreement_id": agreement_id,
        "party": done.signature.party,
        "sha256": done.signature.sha256,
        "complete": done.complete,
        "authorisation_id": done.authorisation_id,
    }


async def read_scan(file: UploadFile) -> bytes:
    data = await file.read(MAX_SCAN + 1)
    if len(data) > MAX_SCAN:
        from countylab.errors import TooLarge

        raise TooLarge("文件超过 20 MB", "The file is over 20 MB", field="file")
    return data


@router.post("/agreements/{agreement_id}/attachments", status_code=201)
async def attach(
    agreement_id: Id, file: Annotated[UploadFile, File()], actor: Actor, lab: LabDep
) -> dict[str, Any]:
    """A scanned, stamped copy (PDF, PNG or JPEG), kept with its SHA-256."""
    data = await read_scan(file)
    with lab.tx() as s:
        row = agr.attach(s, actor, agreement_id, filename=file.filename or "scan", content=data)
        return {"id": row.id, "filename": row.filename, "sha256": row.sha256, "size": row.size}


def attachment_response(lab: Any, actor: Any, agreement_id: int, attachment_id: int) -> Response:
    from countylab.errors import NotFound

    with lab.read() as s:
        a = agr.get(s, agreement_id)
        agr.require_read(s, actor, agr.application(s, a.application_id))
        found = [x for x in agr.attachments(s, agreement_id) if x.id == attachment_id]
        if not found:
            raise NotFound("没有这个附件", "No such attachment")
        row = found[0]
        body, media, name = bytes(row.content), row.media_type, row.filename
    return Response(body, media_type=media, headers={"Content-Disposition": content_disposition(name)})


@router.get("/agreements/{agreement_id}/attachments/{attachment_id}")
def attachment(agreement_id: Id, attachment_id: Id, actor: Actor, lab: LabDep) -> Response:
    return attachment_response(lab, actor, agreement_id, attachment_id)


# -- authorisations --------------------------------------------------------------------------------
@router.get("/authorisations")
def list_authorisations(actor: Actor, lab: LabDep, status: str | None = None) -> dict[str, Any]:
    if status is not None and status not in auths.STATUSES:
        from countylab.errors import ValidationFailed

        raise ValidationFailed("状态无效", "Unknown status", field="status")
    with lab.read() as s:
        items = auths.list_all(s, actor, status=status)
    return {"items": items, "count": len(items)}


@router.get("/authorisations/{authorisation_id}")
def show_authorisation(authorisation_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        auths.require_list(actor)
        return auths.view(s, auths.get(s, authorisation_id))


def change(lab: Any, actor: Any, authorisation_id: int, verb: str, reason: str) -> dict[str, Any]:
    with lab.tx() as s:
        stop = stop_jobs_with(lab.jobs.service)
        if verb == "suspend":
            a = auths.suspend(s, actor, authorisation_id, reason=reason, now=lab.clock(), stop_jobs=stop)
        elif verb == "resume":
            a = auths.resume(s, actor, authorisation_id, reason=reason, now=lab.clock())
        else:
            a = auths.revoke(s, actor, authorisation_id, reason=reason, now=lab.clock(), stop_jobs=stop)
        return auths.view(s, a)


@router.post("/authorisations/{authorisation_id}/suspend")
def suspend(authorisation_id: Id, body: ReasonIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Steward: suspend at once (reversible); the project's jobs stop."""
    return change(lab, actor, authorisation_id, "suspend", body.reason)


@router.post("/authorisations/{authorisation_id}/resume")
def resume(authorisation_id: Id, body: ReasonIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    return change(lab, actor, authorisation_id, "resume", body.reason)


@router.post("/authorisations/{authorisation_id}/revoke")
def revoke(authorisation_id: Id, body: ReasonIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Steward: revoke for good; the project's jobs stop."""
    return change(lab, actor, authorisation_id, "revoke", body.reason)


# -- disclosure ------------------------------------------------------------------------------------
def disclosure_data(lab: Any, actor: Any, start: date | None, end: date | None) -> dict[str, Any]:
    period = disclosure.Period.of(start, end, today=beijing_today(lab.clock()))
    with lab.read() as s:
        return disclosure.report(s, actor, period)


def disclosure_xlsx(lab: Any, actor: Any, data: dict[str, Any]) -> Response:
    body = disclosure.to_xlsx(data)
    p = data["period"]
    with lab.tx() as s:
        disclosure.record_export(s, actor, data, "xlsx")
    name = f"授权信息披露-{p['start']}-{p['end']}.xlsx"
    return Response(body, media_type=XLSX_TYPE, headers={"Content-Disposition": content_disposition(name)})


@router.get(
    "/disclosure",
    response_model=None,
    responses={200: {"content": {"application/json": {}, XLSX_TYPE: {}}}},
)
def disclosure_report(
    actor: Actor,
    lab: LabDep,
    start: date | None = None,
    end: date | None = None,
    format: Literal["json", "xlsx"] = "json",
) -> dict[str, Any] | Response:
    """Authorisations, emergency and system grants, suspensions, revocations and expiries of a
    period (default: this year so far); ``format=xlsx`` for Excel (the export is audited)."""
    data = disclosure_data(lab, actor, start, end)
    if format == "xlsx":
        return disclosure_xlsx(lab, actor, data)
    return data
