"""API: the data catalog (datasets, uploads, pushes, versions, grades, column metadata, previews)."""

from __future__ import annotations

import io
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from countylab.catalog import preview as previews
from countylab.catalog import service as catalog
from countylab.errors import ValidationFailed
from countylab.storage.catalog_models import DatasetColumn, DatasetVersion
from countylab.storage.models import Dataset
from countylab.web.deps import Actor, LabDep
from countylab.web.params import BodyId, Id, QueryId, Seed

router = APIRouter(prefix="/api", tags=["catalog"])


def dataset_summary(d: Dataset) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "title": d.title,
        "department": d.org.name,
        "org_id": d.org_id,
        "grade": d.grade,
        "grade_confirmed": d.grade_confirmed,
        "tags": list(d.tags or []),
        "row_count": d.row_count,
        "current_version": d.current_version,
        "privacy_unit": d.privacy_unit,
        "update_frequency": d.update_frequency,
        "data_updated_at": d.data_updated_at.isoformat() if d.data_updated_at else None,
    }


def column_view(c: DatasetColumn) -> dict[str, Any]:
    tags = list(c.tags or [])
    if c.pii_kind:
        tags.append(f"pii:{c.pii_kind}")
    return {
        "name": c.name,
        "type": c.type,
        "title": c.title,
        "tags": tags,
        "sensitive": c.sensitive,
        "pii": {
            "kind": c.pii_kind,
            "confidence": c.pii_confidence,
            "sample_count": c.pii_sample_count,
            "matched_count": c.pii_matched_count,
        }
        if c.pii_kind
        else None,
        "lower": c.lower,
        "upper": c.upper,
        "key_set": c.key_set,
        "joinable_to": list(c.joinable_to or []),
        "profile": c.profile or {},
    }


def version_view(v: DatasetVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "row_count": v.row_count,
        "bytes": v.bytes,
        "mode": v.mode,
        "source": v.source,
        "created_at": v.created_at.isoformat(),
        "note": v.note,
    }


def dataset_detail(s: Any, d: Dataset) -> dict[str, Any]:
    return {
        **dataset_summary(d),
        "description": d.description,
        "contact": d.contact,
        "privacy_unit_column": d.privacy_unit_column,
        "grade_reason": d.grade_reason,
        "proposed_grade": d.proposed_grade,
        "key_columns": list(d.key_columns or []),
        "columns": [column_view(c) for c in catalog.columns(s, d.id)],
        "versions": [version_view(v) for v in catalog.versions(s, d.id)],
    }


def catalog_filters(
    q: str = "", department: QueryId = None, grade: str | None = None, tag: str | None = None
) -> catalog.Filters:
    """The catalog's query parameters (shared by ``/datasets`` and ``/search``)."""
    return catalog.Filters(q=q, department=department, grade=grade, tag=tag)


CatalogFilters = Annotated[catalog.Filters, Depends(catalog_filters)]


@router.get("/datasets")
def list_datasets(actor: Actor, lab: LabDep, filters: CatalogFilters) -> dict[str, Any]:
    with lab.read() as s:
        found = catalog.search_datasets(s, filters)
        return {"items": [dataset_summary(d) for d in found]}


class DatasetIn(BaseModel):
    name: str = ""  # empty: generated from the title (pinyin), returned in the answer
    title: str
    org_id: BodyId | None = None
    description: str = ""
    contact: str = ""
    update_frequency: str = "static"
    privacy_unit: str = "none"
    privacy_unit_column: str | None = None
    tags: list[str] = Field(default_factory=list)
    key_columns: list[str] = Field(default_factory=list)


@router.post("/datasets", status_code=201)
def create_dataset(body: DatasetIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        d = catalog.create_dataset(s, actor, **body.model_dump())
        return dataset_detail(s, d)


@router.get("/datasets/{dataset_id}")
def get_dataset(dataset_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        ds = catalog.get_dataset(s, dataset_id)
        return dataset_detail(s, ds) | {
            "stream_rows": lab.ingestion.stream_rows(ds) if ds.current_version else 0
        }


class DatasetPatch(BaseModel):
    title: str | None = None
    description: str | None = None
    contact: str | None = None
    update_frequency: str | None = None
    privacy_unit: str | None = None
    privacy_unit_column: str | None = None
    tags: list[str] | None = None
    key_columns: list[str] | None = None


@router.patch("/datasets/{dataset_id}")
def update_dataset(dataset_id: Id, body: DatasetPatch, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        d = catalog.update_dataset(s, actor, dataset_id, **body.model_dump(exclude_none=True))
        return dataset_detail(s, d)


@router.post("/datasets/{dataset_id}/uploads", status_code=201)
def stage_upload(
    dataset_id: Id,
    file: Annotated[UploadFile, File()],
    actor: Actor,
    lab: LabDep,
    header_row: Annotated[int | None, Form(ge=1)] = None,
    skip_rows: Annotated[str, Form(max_length=2000)] = "",
) -> dict[str, Any]:
    """Stage a file; spreadsheets come back with their detected ``layout`` to confirm."""
    from countylab.web.api.sheet_uploads import staged_view

    return staged_view(lab, actor, dataset_id, file, header_row, skip_rows)


class CommitIn(BaseModel):
    mode: str = "replace"
    schema_override: dict[str, str] | None = None
    key: list[str] | None = None
    note: str = ""
    header_row: int | None = Field(None, ge=1)
    skip_rows: str | list[int] | None = None
    names: dict[str, str] | None = None  # header text -> column identifier


@router.post("/datasets/{dataset_id}/uploads/{upload_id}/commit", status_code=201)
def commit_upload(
    dataset_id: Id, upload_id: str, body: CommitIn, actor: Actor, lab: LabDep
) -> dict[str, Any]:
    from countylab.web.api.sheet_uploads import commit_staged

    return version_view(commit_staged(lab, actor, dataset_id, upload_id, body.model_dump()))


@router.post("/datasets/{dataset_id}/versions", status_code=201)
def upload_version(
    dataset_id: Id,
    file: Annotated[UploadFile, File()],
    actor: Actor,
    lab: LabDep,
    mode: Annotated[str, Form()] = "replace",
    key: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> dict[str, Any]:
    """One step: upload a file and commit it (the schema is inferred, or the dataset's own)."""
    staged = lab.ingestion.stage_upload(actor, dataset_id, file.filename or "upload", file.file)
    keys = [k.strip() for k in key.split(",") if k.strip()] or None
    v = lab.ingestion.commit_upload(actor, dataset_id, staged.id, mode=mode, key=keys, note=note)
    return version_view(v)


@router.get("/datasets/{dataset_id}/versions")
def list_versions(dataset_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        catalog.get_dataset(s, dataset_id)
        return {"items": [version_view(v) for v in catalog.versions(s, dataset_id)]}


ARROW_STREAM = "application/vnd.apache.arrow.stream"


@router.post("/datasets/{dataset_id}/rows")
async def push_rows(dataset_id: Id, request: Request, actor: Actor, lab: LabDep) -> Response:
    """Push a micro-batch (JSON ``{"rows": [...], "idempotency_key": ...}`` or an Arrow IPC stream)."""
    from starlette.concurrency import run_in_threadpool

    body = await request.body()
    ctype = request.headers.get("content-type", "")
    header_key = request.headers.get("idempotency-key")

    def parse_and_push() -> tuple[bool, int]:  # JSON parsing and the push both off the event loop
        payload: list[dict[str, Any]] | bytes
        if ctype.startswith(ARROW_STREAM):
            payload, key = body, header_key
        else:
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise ValidationFailed(
                    "请求体不是合法的 JSON", "The request body is not valid JSON", reason="bad_json"
                ) from None
            if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
                raise ValidationFailed(
                    '请求体须为 {"rows": [...]}', 'The body must be {"rows": [...]}', reason="bad_shape"
                )
            payload = data["rows"]
            key = data.get("idempotency_key") or header_key
        return lab.ingestion.push(actor, dataset_id, payload, key)

    accepted, rows = await run_in_threadpool(parse_and_push)
    response = JSONResponse({"accepted": rows if accepted else 0, "duplicate": not accepted})
    if not accepted:  # a retried batch: nothing changed, so nothing to audit
        response.headers["X-Countylab-Outcome"] = "unchanged"
    return response


@router.post("/datasets/{dataset_id}/compact")
def compact(dataset_id: Id, actor: Actor, lab: LabDep) -> Response:
    with lab.tx() as s:
        catalog.authorize_write(actor, catalog.get_dataset(s, dataset_id))
    files = lab.ingestion.compact(actor, dataset_id)
    response = JSONResponse({"version": files.version if files else None})
    if files is None:
        response.headers["X-Countylab-Outcome"] = "unchanged"
    return response


class GradeIn(BaseModel):
    grade: str
    reason: str = ""


@router.put("/datasets/{dataset_id}/grade")
def set_grade(dataset_id: Id, body: GradeIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        d = catalog.set_grade(s, actor, dataset_id, body.grade, body.reason)
        return dataset_summary(d) | {"grade_reason": d.grade_reason}


@router.get("/datasets/{dataset_id}/grade-history")
def grade_history(dataset_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        return {
            "items": [
                {
                    "from": g.from_grade,
                    "to": g.to_grade,
                    "kind": g.kind,
                    "reason": g.reason,
                    "at": g.at.isoformat(),
                    "by_user_id": g.by_user_id,
                }
                for g in catalog.grade_history(s, dataset_id)
            ]
        }


class ColumnIn(BaseModel):
    title: str | None = None
    tags: list[str] | None = None
    lower: float | None = None
    upper: float | None = None
    key_set: str | None = None
    joinable_to: list[str] | None = None
    sensitive: bool | None = None


@router.put("/datasets/{dataset_id}/columns/{name}")
def set_column(dataset_id: Id, name: str, body: ColumnIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        return column_view(
            catalog.set_column(s, actor, dataset_id, name, **body.model_dump(exclude_none=True))
        )


@router.get("/datasets/{dataset_id}/preview")
def preview(dataset_id: Id, actor: Actor, lab: LabDep, rows: int = Query(20, ge=1, le=200)) -> dict[str, Any]:
    p = previews.preview(lab, actor, dataset_id, rows)
    return {"dummy": p.dummy, "label": p.label, "columns": p.columns, "rows": p.rows}


@router.get(
    "/datasets/{dataset_id}/dummy",
    response_class=Response,
    responses={
        200: {
            "description": "dummy rows as CSV or Parquet (an attachment)",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
def dummy_download(
    dataset_id: Id,
    actor: Actor,
    lab: LabDep,
    rows: int = Query(1000, ge=1, le=1_000_000),
    format: str = Query("csv", pattern="^(csv|parquet)$"),
    seed: Seed = 0,
    project_id: QueryId = None,
) -> Response:
    """Dummy data (模拟数据) with the dataset's schema: free to download, never real rows.

    With ``project_id``: only the columns a sandbox job of that project will see at
    ``/data/<name>/`` (the project's members only; a dataset it cannot bind is refused)."""
    table, name = previews.dummy_table(lab, actor, dataset_id, rows, seed=seed, project_id=project_id)
    buf = io.BytesIO()
    if format == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, buf)
        media = "application/vnd.apache.parquet"
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, buf)
        media = "text/csv; charset=utf-8"
    return Response(
        buf.getvalue(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}-dummy.{format}"'},
    )


@router.get("/key-sets")
def list_key_sets(actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        return {
            "items": [
                {"name": k.name, "title": k.title, "source": k.source, "size": len(k.values)}
                for k in catalog.key_sets(s).values()
            ]
        }


class KeySetIn(BaseModel):
    title: str
    values: list[Any]
    source: str | None = None


@router.put("/key-sets/{name}")
def save_key_set(name: str, body: KeySetIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        k = catalog.upsert_key_set(
            s, actor, name=name, title=body.title, values=body.values, source=body.source
        )
        return {"name": k.name, "size": len(k.values)}
