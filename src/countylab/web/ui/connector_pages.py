"""Pages of pull connectors: a dataset's connectors with their last runs, add, run now, pause, delete."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from countylab.catalog import service as catalog
from countylab.connectors import service as connectors
from countylab.connectors.sources import mask_dsn
from countylab.errors import CountylabError
from countylab.i18n import translator
from countylab.storage.catalog_models import Connector
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id
from countylab.web.ui.common import FLASH_COOKIE, form_action, lang_of, render

router = APIRouter(include_in_schema=False)


def _back(dataset_id: int) -> str:
    return f"/datasets/{dataset_id}/connectors"


@router.get("/datasets/{dataset_id}/connectors")
def connectors_page(request: Request, dataset_id: Id, actor: Actor, lab: LabDep) -> Response:
    lang = lang_of(request)
    with lab.read() as s:
        ds = catalog.get_dataset(s, dataset_id)
        found = connectors.list_connectors(s, actor, dataset_id)
        last = connectors.last_runs(s, [c.id for c in found])
        rows = []
        for c in found:
            run = last.get(c.id)
            error = connectors.run_error(run) if run is not None else None
            rows.append(
                {
                    "c": c,
                    "dsn": mask_dsn(c.dsn),
                    "run": run,
                    "next_run_at": connectors.aware(c.next_run_at),
                    "error": (error["en"] if lang == "en" else error["zh"]) if error else "",
                }
            )
    return render(request, "connectors.html", ds=ds, rows=rows, min_interval=connectors.MIN_INTERVAL_S)


@router.post("/datasets/{dataset_id}/connectors")
def create_connector(
    request: Request,
    dataset_id: Id,
    actor: Actor,
    lab: LabDep,
    dsn: Annotated[str, Form()],
    source_table: Annotated[str, Form()],
    cursor_column: Annotated[str, Form()],
    key_columns: Annotated[str, Form()] = "",
    interval_s: Annotated[str, Form()] = "300",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            connectors.create_connector(
                s,
                actor,
                dataset_id,
                dsn=dsn,
                source_table=source_table,
                cursor_column=cursor_column,
                key_columns=[k.strip() for k in key_columns.replace("，", ",").split(",") if k.strip()],
                interval_s=int(interval_s) if interval_s.strip().isdigit() else -1,
            )

    return form_action(request, _back(dataset_id), run, "conn.flash.created")


def _dataset_of(lab: LabDep, connector_id: int) -> int | None:
    with lab.read() as s:
        c = s.get(Connector, connector_id)
        return c.dataset_id if c is not None else None


@router.post("/connectors/{connector_id}/run")
def run_now(request: Request, connector_id: Id, actor: Actor, lab: LabDep) -> Response:
    back = _back(dataset_id) if (dataset_id := _dataset_of(lab, connector_id)) else "/datasets"
    t = translator(lang_of(request))
    try:
        run = connectors.run_sync(lab, actor, connector_id, trigger="manual")
    except CountylabError as exc:  # not allowed, unknown, already running: a refusal like any form's
        return _refuse(request, back, exc)
    if run.status == "succeeded":
        message, kind = (
            t("conn.flash.run_ok", rows=f"{run.rows:,}", version=f"v{run.version}" if run.version else "—"),
            "ok",
        )
    else:
        error = connectors.run_error(run) or {}
        text = error.get("en" if lang_of(request) == "en" else "zh", "")
        message, kind = t("conn.flash.run_failed", error=text), "error"
    # A failed sync is a recorded, audited run, not a refused form: no "refused" outcome header.
    response = RedirectResponse(back, status_code=303)
    response.set_cookie(FLASH_COOKIE, quote(f"{kind}|{message}"), max_age=60, httponly=True, samesite="lax")
    return response


def _refuse(request: Request, back: str, exc: CountylabError) -> Response:
    def fail() -> None:
        raise exc

    return form_action(request, back, fail, "flash.saved")


@router.post("/connectors/{connector_id}/toggle")
def toggle(
    request: Request, connector_id: Id, actor: Actor, lab: LabDep, enabled: Annotated[str, Form()] = ""
) -> Response:
    back = _back(dataset_id) if (dataset_id := _dataset_of(lab, connector_id)) else "/datasets"

    def run() -> None:
        with lab.tx() as s:
            connectors.update_connector(s, actor, connector_id, enabled=enabled == "1")

    return form_action(request, back, run, "flash.saved")


@router.post("/connectors/{connector_id}/delete")
def delete(request: Request, connector_id: Id, actor: Actor, lab: LabDep) -> Response:
    back = _back(dataset_id) if (dataset_id := _dataset_of(lab, connector_id)) else "/datasets"

    def run() -> None:
        with lab.tx() as s:
            connectors.delete_connector(s, actor, connector_id)

    return form_action(request, back, run, "conn.flash.deleted")
