"""The JSON of staging and committing an upload with a spreadsheet layout (header row, skipped
rows, column identifiers), shared by the API routes in ``catalog.py``; no routes of its own."""

from __future__ import annotations

from typing import Any

from fastapi import UploadFile

from countylab.identity.access import Principal
from countylab.ingest.layout import describe, parse_skip
from countylab.lab import Lab
from countylab.storage.catalog_models import DatasetVersion


def staged_view(
    lab: Lab, actor: Principal, dataset_id: int, file: UploadFile, header_row: int | None, skip_rows: str
) -> dict[str, Any]:
    staged = lab.ingestion.stage_upload(
        actor,
        dataset_id,
        file.filename or "upload",
        file.file,
        header_row=header_row,
        skip_rows=parse_skip(skip_rows),
    )
    out: dict[str, Any] = {
        "upload_id": staged.id,
        "filename": staged.filename,
        "format": staged.format,
        "encoding": staged.encoding,
        "bytes": staged.bytes,
        "schema": staged.schema.to_json(),
        "existing_schema": staged.existing_schema,
        "preview": staged.preview,
        "layout": None,
        "suggested_names": staged.suggested,
    }
    if staged.layout is not None and staged.sample is not None:
        out["layout"] = describe(staged.layout, staged.sample)
    return out


def commit_staged(
    lab: Lab, actor: Principal, dataset_id: int, upload_id: str, body: dict[str, Any]
) -> DatasetVersion:
    skip = body.get("skip_rows")
    skip_rows = (
        None if skip is None else parse_skip(skip if isinstance(skip, str) else ",".join(map(str, skip)))
    )
    return lab.ingestion.commit_upload(
        actor,
        dataset_id,
        upload_id,
        mode=body["mode"],
        schema_override=body.get("schema_override"),
        key=body.get("key"),
        note=body.get("note", ""),
        header_row=body.get("header_row"),
        skip_rows=skip_rows,
        names=body.get("names"),
    )
