"""API of the county map: boundary GeoJSON and the public map's data (no login), the map's
status and the import of a county's own boundaries (``showcase.manage``)."""

from __future__ import annotations

import hashlib
import threading
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from countylab.identity.access import authorize
from countylab.identity.roles import Permission
from countylab.lab import Lab
from countylab.showcase import map_public, maps
from countylab.showcase.boundaries_import import import_boundaries
from countylab.web.deps import Actor, LabDep

router = APIRouter(tags=["maps"])

Level = Literal["town", "village"]

_LOCK = threading.Lock()
#: (lab, level) -> (import id, ETag, body): the GeoJSON of a level is built once per import
_GEOJSON: dict[tuple[str, str], tuple[int | None, str, bytes]] = {}


def boundary_body(lab: Lab, level: str) -> tuple[str, bytes]:
    """The display GeoJSON of ``level`` and its ETag, rebuilt only when a new import lands (keyed
    by the lab's data folder, not ``id(lab)``: a test's next lab may reuse a freed object's id)."""
    key = (f"{lab.settings.data_dir}|{lab.settings.database_url}", level)
    with lab.read() as s:
        imp = maps.current_import(s, level)
        current = imp.id if imp else None
        with _LOCK:
            hit = _GEOJSON.get(key)
        if hit is not None and hit[0] == current:
            return hit[1], hit[2]
        body = orjson.dumps(maps.boundaries(s, level))
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    with _LOCK:
        _GEOJSON[key] = (current, etag, body)
    return etag, body


@router.get(
    "/public/api/map/boundaries/{level}",
    responses={200: {"content": {"application/geo+json": {}}}, 304: {"description": "Not modified (ETag)"}},
)
def public_boundaries(level: Level, request: Request, lab: LabDep) -> Response:
    """The town or village boundaries as a GeoJSON FeatureCollection (simplified for display;
    properties ``code``, ``name``, ``level``), with an ETag: browsers and the intranet's proxies
    keep it until the next import."""
    etag, body = boundary_body(lab, level)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/geo+json", headers=headers)


@router.get("/public/api/map")
def public_map(lab: LabDep) -> Response:
    """What the public map draws: ``statistics`` (map charts from published stories and dashboards:
    released or DP numbers, DP with intervals) and ``layers`` (open feeds' newest readings at their
    points)."""
    body = orjson.dumps(map_public.public_payload(lab))
    return Response(body, media_type="application/json", headers={"Cache-Control": "public, max-age=30"})


@router.get("/api/maps")
def map_status(actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Per level: the current boundaries (areas drawn of the county's codes, codes not drawn) and
    the import history; points per open-data layer (``showcase.manage``)."""
    authorize(actor, Permission.showcase_manage, target="map")
    with lab.read() as s:
        return maps.status(s)


@router.post("/api/maps/import", status_code=201)
async def import_map(
    actor: Actor,
    lab: LabDep,
    file: Annotated[
        UploadFile, File(description="GeoJSON FeatureCollection, or a zip of .shp/.shx/.dbf[/.prj]")
    ],
    level: Annotated[Level, Form()],
    code_property: Annotated[str, Form(max_length=64)] = "code",
    name_property: Annotated[str, Form(max_length=64)] = "name",
) -> dict[str, Any]:
    """Replace the boundaries of a level with a checked file, all or nothing (``showcase.manage``);
    a bad file is refused with every bad feature named (``details.problems``)."""
    data = await file.read()
    with lab.tx() as s:
        r = import_boundaries(
            s,
            actor,
            level=level,
            data=data,
            filename=file.filename or "boundaries",
            code_property=code_property,
            name_property=name_property,
        )
    return {
        "import_id": r.import_id,
        "level": r.level,
        "features": r.features,
        "missing_codes": r.missing_codes,
        "display_bytes": r.bytes_display,
    }
