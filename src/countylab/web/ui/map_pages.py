"""Pages of the county map: the public map (``/public/map``, no login) and the lab's map page
(``/maps``, ``showcase.manage``) where a county imports its own boundaries."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from countylab.errors import CountylabError
from countylab.i18n import translator
from countylab.identity.access import authorize
from countylab.identity.roles import Permission
from countylab.showcase import map_public, maps
from countylab.showcase.boundaries_import import import_boundaries
from countylab.web.deps import Actor, LabDep, MaybeActor
from countylab.web.ui.common import flash_redirect, lang_of, render

router = APIRouter(include_in_schema=False)


def _rows(chart: dict[str, Any]) -> list[dict[str, Any]]:
    """The statistic as a table under the map (for readers without a canvas, and for print)."""
    s = (chart.get("series") or [{}])[0]
    names = chart.get("category_names") or chart.get("categories") or []
    out = []
    for i, code in enumerate(chart.get("categories") or []):
        v = (s.get("values") or [None] * (i + 1))[i]
        lo = (s.get("low") or [None] * (i + 1))[i]
        hi = (s.get("high") or [None] * (i + 1))[i]
        text = (s.get("texts") or [""] * (i + 1))[i] or (
            "" if v is None else f"{v:,.1f}".rstrip("0").rstrip(".")
        )
        out.append({"code": code, "name": names[i], "value": v, "text": text, "low": lo, "high": hi})
    return out


@router.get("/public/map")
def public_map(
    request: Request,
    principal: MaybeActor,
    lab: LabDep,
    level: Literal["town", "village"] = "town",
    stat: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    payload = map_public.public_payload(lab)
    here = [x for x in payload["statistics"] if x["chart"].get("level") == level]
    chosen = next((x for x in here if x["key"] == stat), here[0] if here else None)
    levels_with_stats = {x["chart"].get("level") for x in payload["statistics"]}
    return render(
        request,
        "public/map.html",
        level=level,
        statistics=here,
        other_level_stats="village" in levels_with_stats if level == "town" else "town" in levels_with_stats,
        chosen=chosen,
        rows=_rows(chosen["chart"]) if chosen else [],
        layers=payload["layers"],
    )


def _page(request: Request, actor: Any, lab: Any, status_code: int = 200, **extra: Any) -> Response:
    authorize(actor, Permission.showcase_manage, target="map")
    with lab.read() as s:
        st = maps.status(s)
    context: dict[str, Any] = {
        "problems": None,
        "error": "",
        "form": {"level": "town", "code_property": "code", "name_property": "name"},
    }
    return render(request, "maps.html", status_code=status_code, st=st, **(context | extra))


@router.get("/maps")
def maps_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    return _page(request, actor, lab)


@router.post("/maps/import")
async def maps_import(
    request: Request,
    actor: Actor,
    lab: LabDep,
    file: Annotated[UploadFile, File()],
    level: Annotated[Literal["town", "village"], Form()],
    code_property: Annotated[str, Form(max_length=64)] = "code",
    name_property: Annotated[str, Form(max_length=64)] = "name",
) -> Response:
    """Import a boundary file; a refused file shows the page again with every problem listed."""
    data = await file.read()
    t = translator(lang_of(request))
    try:
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
    except CountylabError as e:
        if e.code == "permission_denied":
            raise
        return _page(
            request,
            actor,
            lab,
            status_code=400,
            error=e.message(lang_of(request)),
            problems=e.details.get("problems"),
            form={"level": level, "code_property": code_property, "name_property": name_property},
        )
    return flash_redirect(
        "/maps",
        t("map.import.done", level=t(f"map.level.{level}"), n=r.features, missing=len(r.missing_codes)),
    )
