"""API: pull connectors of a dataset and their sync runs.  The DSN is only ever returned masked."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from countylab.connectors import service as connectors
from countylab.connectors.sources import mask_dsn
from countylab.storage.catalog_models import Connector, SyncRun
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Count, Id, Limit

router = APIRouter(prefix="/api", tags=["connectors"])


def run_view(r: SyncRun) -> dict[str, Any]:
    return {
        "id": r.id,
        "connector_id": r.connector_id,
        "status": r.status,
        "rows": r.rows,
        "version": r.version,
        "started_at": r.started_at.isoformat() if r.started_at else None,
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        "error": connectors.run_error(r),
    }


def connector_view(c: Connector, last: SyncRun | None = None) -> dict[str, Any]:
    next_run = connectors.aware(c.next_run_at)
    return {
        "id": c.id,
        "dataset_id": c.dataset_id,
        "kind": c.kind,
        "dsn": mask_dsn(c.dsn),
        "source_table": c.source_table,
        "cursor_column": c.cursor_column,
        "key_columns": list(c.key_columns or []),
        "interval_s": c.interval_s,
        "enabled": c.enabled,
        "last_cursor": c.last_cursor,
        "next_run_at": next_run.isoformat() if next_run else None,
        "last_run": run_view(last) if last is not None else None,
    }


@router.get("/datasets/{dataset_id}/connectors")
def list_connectors(dataset_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        found = connectors.list_connectors(s, actor, dataset_id)
        last = connectors.last_runs(s, [c.id for c in found])
        return {"items": [connector_view(c, last.get(c.id)) for c in found]}


class ConnectorIn(BaseModel):
    dsn: str = Field(max_length=2000)
    source_table: str
    cursor_column: str
    key_columns: list[str] = Field(default_factory=list)
    interval_s: Count = 300
    enabled: bool = True
    kind: str = "postgresql"


@router.post("/datasets/{dataset_id}/connectors", status_code=201)
def create_connector(dataset_id: Id, body: ConnectorIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        return connector_view(connectors.create_connector(s, actor, dataset_id, **body.model_dump()))


class ConnectorPatch(BaseModel):
    dsn: str | None = Field(default=None, max_length=2000)
    source_table: str | None = None
    cursor_column: str | None = None
    key_columns: list[str] | None = None
    interval_s: Count | None = None
    enabled: bool | None = None
    reset_cursor: bool = False


@router.patch("/connectors/{connector_id}")
def update_connector(connector_id: Id, body: ConnectorPatch, actor: Actor, lab: LabDep) -> dict[str, Any]:
    fields = body.model_dump(exclude_none=True)
    reset = bool(fields.pop("reset_cursor", False))
    with lab.tx() as s:
        c = connectors.update_connector(s, actor, connector_id, reset_cursor=reset, **fields)
        return connector_view(c, connectors.last_runs(s, [c.id]).get(c.id))


@router.delete("/connectors/{connector_id}")
def delete_connector(connector_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        connectors.delete_connector(s, actor, connector_id)
    return {"deleted": connector_id}


@router.post("/connectors/{connector_id}/run")
def run_now(connector_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Sync now; a failed sync is still a run (``status: failed`` with the reason), not an HTTP error."""
    return run_view(connectors.run_sync(lab, actor, connector_id, trigger="manual"))


@router.get("/connectors/{connector_id}/runs")
def list_runs(connector_id: Id, actor: Actor, lab: LabDep, limit: Limit = 50) -> dict[str, Any]:
    with lab.read() as s:
        found = connectors.runs(s, actor, connector_id, min(max(limit, 1), 500))
        return {"items": [run_view(r) for r in found]}
