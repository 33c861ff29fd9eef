"""The upload confirmation page of a spreadsheet: the sheet as read (header highlighted, skipped
rows with their reason), the proposed identifiers and types; and reading it again with another
header row or skip range.  Re-reading is a GET that computes in memory and writes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from countylab.catalog import service as catalog
from countylab.catalog.ingestion import StagedUpload
from countylab.errors import CountylabError
from countylab.ingest import COLUMN_TYPES, MODES, TableSchema
from countylab.ingest.layout import Layout, Sample, describe, parse_skip
from countylab.ingest.tidy import sample_schema
from countylab.lab import Lab
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id
from countylab.web.ui.common import form_action, render

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class _Shown:
    """The facts of a staged file the page shows (a StagedUpload, or one read again)."""

    id: str
    filename: str
    format: str
    encoding: str | None
    bytes: int
    existing_schema: bool


def render_confirm(
    request: Request,
    lab: Lab,
    dataset_id: int,
    shown: Any,
    schema: TableSchema,
    preview: list[dict[str, Any]],
    layout: Layout | None,
    sample: Sample | None,
    suggested: dict[str, str] | None,
) -> Response:
    with lab.read() as s:
        ds = catalog.get_dataset(s, dataset_id)
    return render(
        request,
        "upload_confirm.html",
        ds=ds,
        staged=shown,
        schema=schema,
        preview=preview,
        layout=describe(layout, sample) if layout is not None and sample is not None else None,
        suggested=suggested,
        types=COLUMN_TYPES,
        modes=MODES,
    )


def render_staged(request: Request, lab: Lab, staged: StagedUpload) -> Response:
    return render_confirm(
        request,
        lab,
        staged.dataset_id,
        staged,
        staged.schema,
        staged.preview,
        staged.layout,
        staged.sample,
        staged.suggested,
    )


@router.get("/datasets/{dataset_id}/upload/{upload_id}")
def reread_upload(
    request: Request,
    dataset_id: Id,
    upload_id: str,
    actor: Actor,
    lab: LabDep,
    header_row: int | None = None,
    skip_rows: str = "",
) -> Response:
    """The confirmation page again, with the header row and skipped rows the user chose."""
    try:
        layout, sample, suggested, meta = lab.ingestion.restage(
            actor,
            dataset_id,
            upload_id,
            header_row=header_row if header_row and header_row > 0 else None,
            skip_rows=parse_skip(skip_rows[:2000]),
        )
        schema, preview = sample_schema(layout, sample)
        if meta.get("existing"):
            schema = TableSchema.from_json(meta["schema"])
    except CountylabError as exc:
        refused = exc

        def fail() -> None:
            raise refused

        return form_action(request, f"/datasets/{dataset_id}", fail, "flash.saved")
    shown = _Shown(
        upload_id,
        meta["filename"],
        meta["format"],
        meta.get("encoding"),
        int(meta.get("bytes") or 0),
        bool(meta.get("existing")),
    )
    return render_confirm(request, lab, dataset_id, shown, schema, preview, layout, sample, suggested)
