"""Pages of agreements (授权协议), authorisations (授权备案) and the disclosure report.

``/agreements/{id}``: the document (PDF download, every version), who signed what and when, the
sign form (the password asked again) and the stamped copy; ``/ops/authorisations``: the
steward's suspend / resume / revoke; ``/ops/disclosure``: the report and its Excel export.
The application page (engineer A's ``application.html``) includes ``_agreement.html``, whose
values :func:`agreement_context` computes.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from countylab.errors import ValidationFailed
from countylab.identity.access import Principal, has_permission
from countylab.identity.roles import Permission
from countylab.operations import agreements as agr
from countylab.operations import authorisations as auths
from countylab.web.api import agreements as api
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id
from countylab.web.ui.common import flash_redirect, form_action, lang_of, render

router = APIRouter(include_in_schema=False)


def form_date(text: str, field: str) -> date | None:
    """A date typed in a form (YYYY-MM-DD), or None when empty; a bilingual error otherwise."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"日期格式应为 年-月-日（如 2026-12-31）：{text[:20]}",
            f"Dates are written YYYY-MM-DD (e.g. 2026-12-31): {text[:20]}",
            field=field,
        ) from None


def agreement_context(s: Any, actor: Principal, application: Any) -> dict[str, Any]:
    """What ``_agreement.html`` shows on an application's page (read-only)."""
    current = agr.current(s, application.id)
    auth = auths.for_project(s, application.project_id) if application.project_id else None
    return {
        "agreement": agr.view(s, current) if current else None,
        "authorisation": auths.view(s, auth) if auth else None,
        "can_draft": has_permission(actor, Permission.agreement_manage)
        and application.status in ("approved", "signing"),
        "my_party": agr.party_of(s, actor, application),
    }


def install(templates: Any, lab: Any) -> None:
    """``agreement_context(application, principal)`` for ``_agreement.html``: reads in ``lab.read()``."""

    def context(application: Any, principal: Principal) -> dict[str, Any]:
        with lab.read() as s:
            return agreement_context(s, principal, application)

    templates.env.globals["agreement_context"] = context


@router.get("/agreements/{agreement_id}")
def agreement_page(request: Request, agreement_id: Id, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        a = agr.get(s, agreement_id)
        app = agr.application(s, a.application_id)
        agr.require_read(s, actor, app)
        data = api.agreement_payload(s, a)
        party = agr.party_of(s, actor, app)
    signed = {x["party"] for x in data["signatures"]}
    return render(
        request,
        "agreement.html",
        a=data,
        application=app,
        my_party=party,
        can_sign=a.status == "signing" and party is not None and party not in signed,
        can_draft=has_permission(actor, Permission.agreement_manage)
        and app.status in ("approved", "signing"),
        can_attach=party is not None or has_permission(actor, Permission.agreement_manage),
    )


@router.get("/agreements/{agreement_id}/pdf")
def agreement_pdf(agreement_id: Id, actor: Actor, lab: LabDep) -> Response:
    return api.pdf_response(lab, actor, agreement_id)


@router.get("/agreements/{agreement_id}/attachments/{attachment_id}")
def agreement_attachment(agreement_id: Id, attachment_id: Id, actor: Actor, lab: LabDep) -> Response:
    return api.attachment_response(lab, actor, agreement_id, attachment_id)


@router.post("/applications/{approved_application_id}/agreement")
def draft(
    request: Request,
    approved_application_id: Id,
    actor: Actor,
    lab: LabDep,
    extra_clauses: Annotated[str, Form(max_length=4000)] = "",
    replace_signed: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    application_id = approved_application_id
    made: list[int] = []

    def run() -> None:
        with lab.tx() as s:
            a = agr.draft(
                s,
                actor,
                application_id,
                extra_clauses=extra_clauses,
                replace_signed=bool(replace_signed),
                now=lab.clock(),
            )
            made.append(a.id)

    response = form_action(request, f"/applications/{application_id}", run, "agreement.flash.drafted")
    if made:
        response.headers["location"] = f"/agreements/{made[0]}"
    return response


@router.post("/agreements/{agreement_id}/sign")
def sign(
    request: Request,
    agreement_id: Id,
    actor: Actor,
    lab: LabDep,
    sha256: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
) -> Response:
    outcome: list[agr.Signed] = []

    def run() -> None:
        outcome.append(
            api.sign_with_password(lab, request, actor, agreement_id, sha256=sha256, password=password)
        )

    back = f"/agreements/{agreement_id}"
    response = form_action(request, back, run, "agreement.flash.signed")
    if outcome and outcome[0].complete:
        return flash_redirect(back, _t(request, "agreement.flash.authorised"))
    return response


def _t(request: Request, key: str) -> str:
    from countylab.i18n import translator

    return str(translator(lang_of(request))(key))


@router.post("/agreements/{agreement_id}/attach")
async def attach(
    request: Request, agreement_id: Id, actor: Actor, lab: LabDep, file: Annotated[UploadFile, File()]
) -> Response:
    data = await api.read_scan(file)

    def run() -> None:
        with lab.tx() as s:
            agr.attach(s, actor, agreement_id, filename=file.filename or "scan", content=data)

    return form_action(request, f"/agreements/{agreement_id}", run, "agreement.flash.attached")


# -- authorisations --------------------------------------------------------------------------------
@router.get("/ops/authorisations")
def authorisations_page(request: Request, actor: Actor, lab: LabDep, status: str = "") -> Response:
    with lab.read() as s:
        items = auths.list_all(s, actor, status=status if status in auths.STATUSES else None)
    return render(
        request,
        "authorisations.html",
        items=items,
        status=status,
        statuses=auths.STATUSES,
        can_manage=has_permission(actor, Permission.authorisation_manage),
    )


def _change(
    request: Request, lab: Any, actor: Principal, authorisation_id: int, verb: str, reason: str
) -> Response:
    def run() -> None:
        api.change(lab, actor, authorisation_id, verb, reason)

    return form_action(request, "/ops/authorisations", run, f"agreement.flash.{verb}")


Reason = Annotated[str, Form(max_length=2000)]


@router.post("/ops/authorisations/{authorisation_id}/suspend")
def suspend(
    request: Request, authorisation_id: Id, actor: Actor, lab: LabDep, reason: Reason = ""
) -> Response:
    return _change(request, lab, actor, authorisation_id, "suspend", reason)


@router.post("/ops/authorisations/{authorisation_id}/resume")
def resume(
    request: Request, authorisation_id: Id, actor: Actor, lab: LabDep, reason: Reason = ""
) -> Response:
    return _change(request, lab, actor, authorisation_id, "resume", reason)


@router.post("/ops/authorisations/{authorisation_id}/revoke")
def revoke(
    request: Request, authorisation_id: Id, actor: Actor, lab: LabDep, reason: Reason = ""
) -> Response:
    return _change(request, lab, actor, authorisation_id, "revoke", reason)


# -- disclosure ------------------------------------------------------------------------------------
@router.get("/ops/disclosure")
def disclosure_page(
    request: Request, actor: Actor, lab: LabDep, start: str = "", end: str = "", format: str = ""
) -> Response:
    data = api.disclosure_data(lab, actor, form_date(start, "start"), form_date(end, "end"))
    if format == "xlsx":
        return api.disclosure_xlsx(lab, actor, data)
    return render(request, "disclosure.html", d=data)
