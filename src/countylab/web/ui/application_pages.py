"""Pages of data-use applications (用数申请) and of accreditation records (培训合格).

``/applications`` (the caller's list), ``/applications/new`` (the form: from a scenario, or from a
dataset page's "申请使用" with that dataset ticked and the open scenarios offering it first),
``/applications/{id}`` (everything submitted; B's workflow and C's agreement are included by
the template), ``/applications/{id}/edit``, attachments, submit, withdraw, renew, and
``/ops/accreditations`` for the operator.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.errors import ValidationFailed
from countylab.identity.access import Principal, has_permission
from countylab.identity.roles import Permission, Role
from countylab.lab import Lab
from countylab.labels import BEIJING
from countylab.operations import accreditation, application_view, applications, attachments
from countylab.operations import scenarios as sv
from countylab.operations.applications import COMMITMENTS, PURPOSES, ApplicationInput, RequestedDataset
from countylab.operations.states import ScenarioStatus
from countylab.storage.models import Dataset, User, UserRole
from countylab.storage.operations_models import Application
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id, QueryId
from countylab.web.ui.common import form_action, lang_of, render

router = APIRouter(include_in_schema=False)


def _today(lab: Lab) -> date:
    return lab.clock().astimezone(BEIJING).date()


def _date(value: str, name: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(f"日期“{value}”无效", f"Invalid date {value!r}", field=name) from None


@router.get("/applications")
def applications_page(
    request: Request, actor: Actor, lab: LabDep, status: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    lang = lang_of(request)
    with lab.read() as s:
        rows = [application_view.summary(s, a, lang) for a in applications.list_for(s, actor, status=status)]
    return render(
        request,
        "applications.html",
        rows=rows,
        status=status,
        statuses=[
            {"code": c, "name": application_view.status_name(c, lang)} for c in application_view._STATUS_EN
        ],
        can_apply=has_permission(actor, Permission.application_submit),
        can_accredit=has_permission(actor, Permission.accreditation_manage),
    )


def _form_context(
    s: Session,
    actor: Principal,
    lang: str,
    today: date,
    *,
    scenario_id: int | None,
    dataset_id: int | None,
    app_view: dict[str, Any] | None = None,
) -> dict[str, Any]:
    visible = [
        sc
        for sc in sv.list_scenarios(s, actor)
        if sc.status in (ScenarioStatus.collecting, ScenarioStatus.proposed, ScenarioStatus.matched)
    ]
    if dataset_id is not None:  # the scenarios offering the dataset first
        offering = {sc.id for sc in sv.list_scenarios(s, actor, dataset_id=dataset_id)}
        visible.sort(key=lambda sc: (sc.id not in offering, not sv.is_open(sc, today)))
    else:
        offering = set()
    chosen = scenario_id
    if chosen is None and app_view is not None:
        chosen = int(app_view["scenario_id"])
    if chosen is None and dataset_id is not None:
        chosen = next((sc.id for sc in visible if sc.id in offering), None)
    scenario = sv.view(s, sv.get(s, actor, chosen), lang) if chosen is not None else None
    wanted = {d["dataset_id"]: d for d in (app_view or {}).get("datasets", [])}
    colleagues = (
        list(
            s.execute(
                select(User)
                .join(UserRole, UserRole.user_id == User.id)
                .where(User.org_id == actor.org_id, UserRole.role == Role.developer.value, User.is_active)
                .order_by(User.username)
            ).scalars()
        )
        if actor.org_id is not None
        else []
    )
    chosen_members = {m["user_id"] for m in (app_view or {}).get("members", [])}
    dataset = s.get(Dataset, dataset_id) if dataset_id is not None else None
    return {
        "scenarios": [
            {
                "id": sc.id,
                "title": sc.title,
                "status_name": sv.status_name(sc.status, lang),
                "offers_dataset": sc.id in offering,
                "open": sv.is_open(sc, today),
            }
            for sc in visible
        ],
        "scenario": scenario,
        "dataset": dataset,
        "dataset_offered": bool(offering),
        "wanted": wanted,
        "colleagues": [
            {
                "id": u.id,
                "name": u.display_name,
                "username": u.username,
                "checked": u.id in chosen_members,
                "accredited": accreditation.current(s, u.id, today) is not None,
            }
            for u in colleagues
            if u.id != actor.user_id
        ],
        "extra_members": ", ".join(
            m["username"]
            for m in (app_view or {}).get("members", [])
            if m["user_id"] not in {u.id for u in colleagues} and m["role"] != "owner"
        ),
        "purposes": [{"code": c, "name": applications.label(PURPOSES, c, lang)} for c in PURPOSES],
        "channels": [
            {"code": c, "name": applications.label(application_view.CHANNEL_NAMES, c, lang)}
            for c in application_view.CHANNEL_NAMES
        ],
        "commitments": [{"code": c, "text": applications.label(COMMITMENTS, c, lang)} for c in COMMITMENTS],
        "app": app_view,
        "today": today.isoformat(),
    }


@router.get("/applications/new")
def new_application_page(
    request: Request, actor: Actor, lab: LabDep, scenario: QueryId = None, dataset: QueryId = None
) -> Response:
    today = _today(lab)
    with lab.read() as s:
        ctx = _form_context(s, actor, lang_of(request), today, scenario_id=scenario, dataset_id=dataset)
    return render(request, "application_form.html", **ctx)


@router.get("/applications/{application_id}/edit")
def edit_application_page(request: Request, application_id: Id, actor: Actor, lab: LabDep) -> Response:
    today = _today(lab)
    lang = lang_of(request)
    with lab.read() as s:
        app = applications.get(s, actor, application_id)
        view = application_view.full(s, app, today, lang)
        ctx = _form_context(s, actor, lang, today, scenario_id=None, dataset_id=None, app_view=view)
    return render(request, "application_form.html", **ctx)


def _members(s: Session, member: list[int], extra: str) -> tuple[int, ...]:
    ids = list(member)
    for name in [n.strip() for n in extra.replace("，", ",").split(",") if n.strip()]:
        user = s.execute(select(User).where(User.username == name)).scalar_one_or_none()
        if user is None:
            raise ValidationFailed(f"用户“{name}”不存在", f"No user {name!r}", field="member_ids")
        ids.append(user.id)
    return tuple(dict.fromkeys(ids))


def _input(
    s: Session,
    *,
    scenario_id: int,
    title: str,
    purpose: str,
    dataset: list[int],
    column: list[str],
    channel: list[str],
    member: list[int],
    extra_members: str,
    starts_on: str,
    ends_on: str,
    expected_outputs: str,
    commitment: list[str],
) -> ApplicationInput:
    cols: dict[int, list[str]] = {}
    for item in column:
        ds_id, _, name = item.partition(":")
        if ds_id.isdigit():
            cols.setdefault(int(ds_id), []).append(name)
    return ApplicationInput(
        scenario_id=scenario_id,
        title=title,
        purpose=purpose,
        datasets=tuple(
            RequestedDataset(d, tuple(cols[d]) if d in cols else None) for d in dict.fromkeys(dataset)
        ),
        channels=tuple(channel),
        member_ids=_members(s, member, extra_members),
        starts_on=_date(starts_on, "starts_on"),
        ends_on=_date(ends_on, "ends_on"),
        expected_outputs=expected_outputs,
        commitments=tuple(commitment),
    )


# the form's fields, shared by create and update (FastAPI copies list defaults per request)
ScenarioF = Annotated[int, Form(ge=1, le=2**31 - 1)]
TextF = Annotated[str, Form(max_length=200)]
LongF = Annotated[str, Form(max_length=20_000)]
ShortF = Annotated[str, Form(max_length=20)]
IntsF = Annotated[list[int], Form()]
StrsF = Annotated[list[str], Form()]


@router.post("/applications")
def create_application(
    request: Request,
    actor: Actor,
    lab: LabDep,
    scenario_id: ScenarioF,
    title: TextF = "",
    purpose: ShortF = "",
    dataset: IntsF = [],  # noqa: B006
    column: StrsF = [],  # noqa: B006
    channel: StrsF = [],  # noqa: B006
    member: IntsF = [],  # noqa: B006
    extra_members: TextF = "",
    starts_on: ShortF = "",
    ends_on: ShortF = "",
    expected_outputs: LongF = "",
    commitment: StrsF = [],  # noqa: B006
    action: ShortF = "save",
) -> Response:
    """Save a new draft (``action=submit``: and submit it at once)."""
    made: dict[str, int] = {}
    today = _today(lab)

    def run() -> None:
        with lab.tx() as s:
            data = _input(
                s,
                scenario_id=scenario_id,
                title=title,
                purpose=purpose,
                dataset=dataset,
                column=column,
                channel=channel,
                member=member,
                extra_members=extra_members,
                starts_on=starts_on,
                ends_on=ends_on,
                expected_outputs=expected_outputs,
                commitment=commitment,
            )
            app = applications.create(s, actor, data, today=today)
            made["id"] = app.id
        if action == "submit":
            with lab.tx() as s:
                applications.submit(s, actor, made["id"], today=today)

    back = f"/applications/new?scenario={scenario_id}"
    response = form_action(
        request, back, run, "appl.flash.submitted" if action == "submit" else "appl.flash.saved"
    )
    if "id" in made:  # a draft exists even when the submission was refused: show it with the reason
        response.headers["location"] = f"/applications/{made['id']}"
    return response


@router.post("/applications/{application_id}")
def update_application(
    request: Request,
    application_id: Id,
    actor: Actor,
    lab: LabDep,
    scenario_id: ScenarioF,
    title: TextF = "",
    purpose: ShortF = "",
    dataset: IntsF = [],  # noqa: B006
    column: StrsF = [],  # noqa: B006
    channel: StrsF = [],  # noqa: B006
    member: IntsF = [],  # noqa: B006
    extra_members: TextF = "",
    starts_on: ShortF = "",
    ends_on: ShortF = "",
    expected_outputs: LongF = "",
    commitment: StrsF = [],  # noqa: B006
    action: ShortF = "save",
) -> Response:
    today = _today(lab)
    saved: dict[str, bool] = {}

    def run() -> None:
        with lab.tx() as s:
            data = _input(
                s,
                scenario_id=scenario_id,
                title=title,
                purpose=purpose,
                dataset=dataset,
                column=column,
                channel=channel,
                member=member,
                extra_members=extra_members,
                starts_on=starts_on,
                ends_on=ends_on,
                expected_outputs=expected_outputs,
                commitment=commitment,
            )
            applications.update(s, actor, application_id, data, today=today)
        saved["ok"] = True
        if action == "submit":
            with lab.tx() as s:
                applications.submit(s, actor, application_id, today=today)

    response = form_action(
        request,
        f"/applications/{application_id}/edit",
        run,
        "appl.flash.submitted" if action == "submit" else "appl.flash.saved",
    )
    if saved:
        response.headers["location"] = f"/applications/{application_id}"
    return response


@router.get("/applications/{application_id}")
def application_page(request: Request, application_id: Id, actor: Actor, lab: LabDep) -> Response:
    today = _today(lab)
    lang = lang_of(request)
    with lab.read() as s:
        app = applications.get(s, actor, application_id)
        view = application_view.full(s, app, today, lang)
        team = actor.user_id in {m["user_id"] for m in view["members"]}
        row = s.get(Application, application_id)
        renewable = applications.can_renew(s, actor, app)
        # B's and C's parts read the ORM row in the template; detach it with its loaded state
        s.expunge(row)
    return render(
        request,
        "application.html",
        application=row,
        app_view=view,
        is_team=team,
        can_renew=renewable,
    )


@router.post("/applications/{application_id}/submit")
def submit_application(request: Request, application_id: Id, actor: Actor, lab: LabDep) -> Response:
    today = _today(lab)

    def run() -> None:
        with lab.tx() as s:
            applications.submit(s, actor, application_id, today=today)

    return form_action(request, f"/applications/{application_id}", run, "appl.flash.submitted")


@router.post("/applications/{application_id}/withdraw")
def withdraw_application(
    request: Request,
    application_id: Id,
    actor: Actor,
    lab: LabDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            applications.withdraw(s, actor, application_id, reason)

    return form_action(request, f"/applications/{application_id}", run, "appl.flash.withdrawn")


@router.post("/applications/{application_id}/renew")
def renew_application(request: Request, application_id: Id, actor: Actor, lab: LabDep) -> Response:
    made: dict[str, int] = {}
    today = _today(lab)

    def run() -> None:
        with lab.tx() as s:
            made["id"] = applications.start_renewal(s, actor, application_id, today=today).id

    response = form_action(request, f"/applications/{application_id}", run, "appl.flash.renewal")
    if "id" in made:
        response.headers["location"] = f"/applications/{made['id']}/edit"
    return response


@router.post("/applications/{application_id}/attachments")
def upload_attachment(
    request: Request, application_id: Id, actor: Actor, lab: LabDep, file: Annotated[UploadFile, File()]
) -> Response:
    content = file.file.read(attachments.MAX_BYTES + 1)

    def run() -> None:
        with lab.tx() as s:
            attachments.attach(
                s,
                actor,
                application_id,
                filename=file.filename or "attachment.pdf",
                content=content,
                data_dir=lab.settings.data_dir,
            )

    return form_action(request, f"/applications/{application_id}", run, "appl.flash.attached")


@router.get("/applications/{application_id}/attachments/{attachment_id}")
def download_attachment(
    request: Request, application_id: Id, attachment_id: Id, actor: Actor, lab: LabDep
) -> Response:
    with lab.read() as s:
        _, att, path = attachments.open_for(s, actor, application_id, attachment_id, lab.settings.data_dir)
        s.expunge(att)
    with lab.tx() as s:  # who read which attachment: audited, in its own short unit of work
        attachments.record_download(s, actor, application_id, att, via="page")
    return FileResponse(path, media_type="application/pdf", filename=att.filename)


@router.get("/ops/accreditations")
def accreditations_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    today = _today(lab)
    with lab.read() as s:
        rows = [accreditation.view(a, u, today) for a, u in accreditation.list_all(s, actor)]
        users = list(s.execute(select(User).where(User.is_active).order_by(User.username)).scalars())
    return render(
        request,
        "accreditations.html",
        rows=rows,
        users=[{"id": u.id, "label": f"{u.display_name}（{u.username}）"} for u in users],
        today=today.isoformat(),
        warn_days=accreditation.WARN_DAYS,
    )


@router.post("/ops/accreditations")
def record_accreditation(
    request: Request,
    actor: Actor,
    lab: LabDep,
    user_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    course: Annotated[str, Form(max_length=200)] = "",
    certificate_no: Annotated[str, Form(max_length=60)] = "",
    passed_on: Annotated[str, Form(max_length=10)] = "",
    expires_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    def run() -> None:
        passed = _date(passed_on, "passed_on")
        expires = _date(expires_on, "expires_on")
        if passed is None or expires is None:
            raise ValidationFailed(
                "请填写合格日期和有效期", "Give the pass and expiry dates", field="passed_on"
            )
        with lab.tx() as s:
            accreditation.record(
                s,
                actor,
                user_id=user_id,
                course=course,
                certificate_no=certificate_no,
                passed_on=passed,
                expires_on=expires,
            )

    return form_action(request, "/ops/accreditations", run, "appl.flash.accredited")
