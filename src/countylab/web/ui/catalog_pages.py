"""Pages of the data catalog: search, dataset page, create, two-step upload, grading."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from countylab.catalog import preview as previews
from countylab.catalog import service as catalog
from countylab.catalog.grading import Grade
from countylab.errors import CountylabError
from countylab.i18n import translator
from countylab.identity.access import has_permission
from countylab.identity.roles import Permission, Role
from countylab.ingest import MODES
from countylab.storage.models import Org
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id, QueryId
from countylab.web.ui.common import flash_redirect, form_action, lang_of, render

router = APIRouter(include_in_schema=False)


@router.get("/datasets")
def catalog_page(
    request: Request,
    actor: Actor,
    lab: LabDep,
    q: str = "",
    department: str = "",
    grade: str = "",
    tag: str = "",
) -> Response:
    filters = catalog.Filters(
        q=q,
        department=int(department) if department.isdigit() else None,
        grade=grade or None,
        tag=tag or None,
    )
    with lab.read() as s:
        from countylab.catalog import search_service  # ranked, with why each matched

        ranked = search_service.search(s, filters)
        found = [d for d, _ in ranked]
        why = {d.id: h.matches for d, h in ranked}
        departments = list(
            s.execute(select(Org).where(Org.kind == "department").order_by(Org.name)).scalars()
        )
        all_tags = sorted({t for d in catalog.search_datasets(s, catalog.Filters()) for t in (d.tags or [])})
    return render(
        request,
        "catalog.html",
        datasets=found,
        why=why,
        q=q,
        department=department,
        grade=grade,
        tag=tag,
        departments=departments,
        grades=list(Grade),
        tags=all_tags,
        can_create=has_permission(actor, Permission.dataset_write),
    )


@router.get("/datasets/new")
def new_dataset_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    return _new_form(request, actor, lab, {}, None)


def _new_form(
    request: Request, actor: Actor, lab: LabDep, values: dict[str, str], generated: str | None
) -> Response:
    """The registration form, refilled with ``values`` and a generated identifier to confirm."""
    with lab.read() as s:
        departments = list(
            s.execute(select(Org).where(Org.kind == "department").order_by(Org.name)).scalars()
        )
    return render(
        request,
        "dataset_new.html",
        departments=departments,
        frequencies=catalog.FREQUENCIES,
        units=catalog.PRIVACY_UNITS,
        is_admin=Role.admin in actor.roles,
        values=values,
        generated=generated,
    )


@router.post("/datasets")
def create_dataset(
    request: Request,
    actor: Actor,
    lab: LabDep,
    title: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    contact: Annotated[str, Form()] = "",
    update_frequency: Annotated[str, Form()] = "static",
    privacy_unit: Annotated[str, Form()] = "none",
    privacy_unit_column: Annotated[str, Form()] = "",
    tags: Annotated[str, Form()] = "",
    org_id: Annotated[str, Form()] = "",
) -> Response:
    t = translator(lang_of(request))
    if not name.strip() and title.strip():
        # a title only: propose the identifier and let the user see and edit it before saving
        with lab.read() as s:
            proposed = catalog.suggest_dataset_name(s, title)
        values = {
            "name": proposed,
            "title": title,
            "description": description,
            "contact": contact,
            "update_frequency": update_frequency,
            "privacy_unit": privacy_unit,
            "privacy_unit_column": privacy_unit_column,
            "tags": tags,
            "org_id": org_id,
        }
        shown = _new_form(request, actor, lab, values, proposed)
        shown.headers["x-countylab-outcome"] = "unchanged"  # nothing saved yet: no audit event
        return shown
    try:
        with lab.tx() as s:
            ds = catalog.create_dataset(
                s,
                actor,
                name=name.strip(),
                title=title,
                description=description,
                contact=contact,
                update_frequency=update_frequency,
                privacy_unit=privacy_unit,
                privacy_unit_column=privacy_unit_column.strip() or None,
                tags=[x.strip() for x in tags.replace("，", ",").split(",") if x.strip()],
                org_id=int(org_id) if org_id.isdigit() else None,
            )
            new_id = ds.id
    except CountylabError as exc:
        return _refused(request, exc, "/datasets/new")
    return flash_redirect(f"/datasets/{new_id}", t("flash.dataset_created", name=title))


def _refused(request: Request, exc: CountylabError, back: str) -> Response:
    def fail() -> None:
        raise exc

    return form_action(request, back, fail, "flash.saved")


@router.get("/datasets/{dataset_id}")
def dataset_page(request: Request, dataset_id: Id, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        ds = catalog.get_dataset(s, dataset_id)
        cols = catalog.columns(s, ds.id)
        versions = catalog.versions(s, ds.id)
        history = catalog.grade_history(s, ds.id)
        ups, downs = catalog.lineage(s, ds.id)
        key_sets = sorted(catalog.key_sets(s))
        stream_rows = lab.ingestion.stream_rows(ds) if ds.current_version else 0
        can_write = has_permission(actor, Permission.dataset_write) and (
            Role.admin in actor.roles or actor.org_id == ds.org_id
        )
        can_grade = has_permission(actor, Permission.dataset_grade)
    preview = previews.preview(lab, actor, dataset_id, 10) if ds.table_schema else None
    return render(
        request,
        "dataset.html",
        ds=ds,
        cols=cols,
        versions=versions,
        history=history,
        ups=ups,
        downs=downs,
        preview=preview,
        can_write=can_write,
        can_grade=can_grade,
        grades=list(Grade),
        modes=MODES,
        key_sets=key_sets,
        stream_rows=stream_rows,
    )


@router.post("/datasets/{dataset_id}/upload")
def stage_upload(
    request: Request, dataset_id: Id, actor: Actor, lab: LabDep, file: Annotated[UploadFile, File()]
) -> Response:
    from countylab.web.ui.upload_pages import render_staged

    try:
        staged = lab.ingestion.stage_upload(actor, dataset_id, file.filename or "upload", file.file)
    except CountylabError as exc:
        return _refused(request, exc, f"/datasets/{dataset_id}")
    return render_staged(request, lab, staged)


@router.post("/datasets/{dataset_id}/upload/{upload_id}/commit")
async def commit_upload(
    request: Request, dataset_id: Id, upload_id: str, actor: Actor, lab: LabDep
) -> Response:
    from starlette.concurrency import run_in_threadpool

    from countylab.ingest.layout import parse_skip

    form = await request.form()
    overrides = {k[5:]: str(v) for k, v in form.items() if k.startswith("type:")}
    names = {k[5:]: str(v).strip() for k, v in form.items() if k.startswith("name:")}
    mode = str(form.get("mode", "replace"))
    key = [x.strip() for x in str(form.get("key", "")).split(",") if x.strip()] or None
    header_row = str(form.get("header_row", "")).strip()
    t = translator(lang_of(request))
    try:
        skip = parse_skip(str(form.get("skip_rows", ""))[:2000]) if "skip_rows" in form else None
        version = await run_in_threadpool(
            lambda: lab.ingestion.commit_upload(
                actor,
                dataset_id,
                upload_id,
                mode=mode,
                schema_override=overrides or None,
                key=key,
                note=str(form.get("note", "")),
                header_row=int(header_row) if header_row.isdigit() and int(header_row) > 0 else None,
                skip_rows=skip,
                names=names or None,
            )
        )
    except CountylabError as exc:
        return await run_in_threadpool(_refused, request, exc, f"/datasets/{dataset_id}")
    return flash_redirect(
        f"/datasets/{dataset_id}",
        t("flash.version_committed", version=version.version, rows=f"{version.row_count:,}"),
    )


@router.post("/datasets/{dataset_id}/grade")
def set_grade(
    request: Request,
    dataset_id: Id,
    actor: Actor,
    lab: LabDep,
    grade: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            catalog.set_grade(s, actor, dataset_id, grade, reason)

    return form_action(request, f"/datasets/{dataset_id}", run, "flash.grade_saved")


@router.post("/datasets/{dataset_id}/columns/{name}")
def set_column(
    request: Request,
    dataset_id: Id,
    name: str,
    actor: Actor,
    lab: LabDep,
    lower: Annotated[str, Form()] = "",
    upper: Annotated[str, Form()] = "",
    key_set: Annotated[str, Form()] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            catalog.set_column(
                s,
                actor,
                dataset_id,
                name,
                lower=float(lower) if lower.strip() else None,
                upper=float(upper) if upper.strip() else None,
                key_set=key_set or None,
            )

    return form_action(request, f"/datasets/{dataset_id}#schema", run, "flash.saved")


@router.get("/datasets/{dataset_id}/edit")
def edit_page(request: Request, dataset_id: Id, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        ds = catalog.get_dataset(s, dataset_id)
    return render(
        request, "dataset_edit.html", ds=ds, frequencies=catalog.FREQUENCIES, units=catalog.PRIVACY_UNITS
    )


@router.post("/datasets/{dataset_id}/edit")
def edit_dataset(
    request: Request,
    dataset_id: Id,
    actor: Actor,
    lab: LabDep,
    title: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
    contact: Annotated[str, Form()] = "",
    update_frequency: Annotated[str, Form()] = "static",
    tags: Annotated[str, Form()] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            catalog.update_dataset(
                s,
                actor,
                dataset_id,
                title=title,
                description=description,
                contact=contact,
                update_frequency=update_frequency,
                tags=[x.strip() for x in tags.replace("，", ",").split(",") if x.strip()],
            )

    return form_action(request, f"/datasets/{dataset_id}", run, "flash.saved")


@router.get("/datasets/{dataset_id}/dummy.csv")
def dummy_csv(
    dataset_id: Id, actor: Actor, lab: LabDep, rows: int = 1000, project_id: QueryId = None
) -> Response:
    project = f"&project_id={project_id}" if project_id is not None else ""  # a job's columns only
    return RedirectResponse(
        f"/api/datasets/{dataset_id}/dummy?rows={min(max(rows, 1), 100_000)}&format=csv{project}",
        status_code=303,
    )
