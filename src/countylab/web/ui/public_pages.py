"""The public portal (no login): home, project stories, the gallery, live open data, and their JSON.

Every route here is a GET that reads inside ``lab.read()`` (or a cache filled from it) and shows
only what the showcase allows: counts, published stories, showable released results (a release
record names roles and dates, never people), DP figures with their intervals, and open
(一般1级) feeds.  Other public pages (scenarios, notices, the map, dashboards) live in their
own routers; the layout (``public/base.html``) links them all.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from countylab.showcase import gallery, open_data, portal, releases, stories
from countylab.showcase.cache import cached
from countylab.web.deps import LabDep, MaybeActor
from countylab.web.params import Id
from countylab.web.ui.common import render

router = APIRouter(include_in_schema=False)

HOME_LIMIT = 6


def _overview(lab: Any) -> portal.Overview:
    def build() -> portal.Overview:
        with lab.read() as s:
            return portal.overview(s, lab.clock())

    return cached(("overview", str(lab.settings.data_dir), id(lab)), portal.COUNTS_TTL_S, build)


def _home_lists(lab: Any) -> dict[str, Any]:
    def build() -> dict[str, Any]:
        with lab.read() as s:
            return {
                "scenarios": portal.public_scenarios(s, limit=HOME_LIMIT),
                "notices": portal.public_notices(s, now=lab.clock(), limit=HOME_LIMIT),
                "stories": [
                    _story_card(st) for st in stories.list_stories(s, published_only=True)[:HOME_LIMIT]
                ],
                "gallery": gallery.items(s, showable_only=True)[:HOME_LIMIT],
            }

    return cached(("home-lists", str(lab.settings.data_dir), id(lab)), portal.COUNTS_TTL_S, build)


def _story_card(st: Any) -> dict[str, Any]:
    return {
        "project_id": st.project_id,
        "title": st.title,
        "organisation": st.organisation,
        "summary": st.summary,
        "scenario": st.scenario_text,
        "published_at": st.published_at.isoformat() if st.published_at else None,
    }


def _chart_json(view: Any) -> dict[str, Any]:
    return {
        "chart": view.spec,
        "release": view.record.to_public() if view.record is not None else None,
    }


@router.get("/public")
def public_home(request: Request, principal: MaybeActor, lab: LabDep) -> Response:
    return render(
        request,
        "public/home.html",
        overview=_overview(lab),
        readings=open_data.latest(lab),
        **_home_lists(lab),
    )


@router.get("/public/projects")
def public_projects(request: Request, principal: MaybeActor, lab: LabDep) -> Response:
    with lab.read() as s:
        cards = [_story_card(st) for st in stories.list_stories(s, published_only=True)]
    return render(request, "public/projects.html", stories=cards)


def _story(lab: Any, project_id: int) -> tuple[dict[str, Any], list[stories.ChartView]]:
    """A published story as the public sees it, kept as long as the counts (a retraction or an
    edit in this process clears the cache at once; other processes follow within seconds)."""

    def build() -> tuple[dict[str, Any], list[stories.ChartView]]:
        with lab.read() as s:
            story, charts = stories.public_story(s, project_id)
            return _story_card(story), charts

    return cached(("story", str(lab.settings.data_dir), id(lab), project_id), portal.COUNTS_TTL_S, build)


def _gallery(lab: Any) -> list[gallery.ItemView]:
    def build() -> list[gallery.ItemView]:
        with lab.read() as s:
            return gallery.items(s, showable_only=True)

    return cached(("gallery", str(lab.settings.data_dir), id(lab)), portal.COUNTS_TTL_S, build)


@router.get("/public/projects/{project_id}")
def public_project(request: Request, project_id: Id, principal: MaybeActor, lab: LabDep) -> Response:
    card, charts = _story(lab, project_id)
    return render(request, "public/project.html", story=card, charts=charts)


@router.get("/public/gallery")
def public_gallery(request: Request, principal: MaybeActor, lab: LabDep) -> Response:
    return render(request, "public/gallery.html", items=_gallery(lab))


@router.get("/public/gallery/{request_id}")
def public_gallery_item(request: Request, request_id: Id, principal: MaybeActor, lab: LabDep) -> Response:
    with lab.read() as s:
        item = gallery.public_item(s, request_id)
    return render(request, "public/gallery_item.html", item=item)


@router.get("/public/open-data")
def public_open_data(request: Request, principal: MaybeActor, lab: LabDep) -> Response:
    return render(
        request, "public/open_data.html", readings=open_data.latest(lab), refresh_s=int(open_data.REFRESH_S)
    )


# -- JSON ---------------------------------------------------------------------------------------


@router.get("/public/api/overview")
def api_overview(lab: LabDep) -> JSONResponse:
    return JSONResponse(_overview(lab).to_dict(), headers={"Cache-Control": "public, max-age=10"})


@router.get("/public/api/projects")
def api_projects(lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        return {"items": [_story_card(st) for st in stories.list_stories(s, published_only=True)]}


@router.get("/public/api/projects/{project_id}")
def api_project(project_id: Id, lab: LabDep) -> dict[str, Any]:
    card, charts = _story(lab, project_id)
    return {**card, "charts": [_chart_json(c) for c in charts]}


@router.get("/public/api/gallery")
def api_gallery(lab: LabDep) -> dict[str, Any]:
    return {"items": [_item_json(i) for i in _gallery(lab)]}


@router.get("/public/api/gallery/{request_id}")
def api_gallery_item(request_id: Id, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        return _item_json(gallery.public_item(s, request_id))


def _item_json(item: gallery.ItemView) -> dict[str, Any]:
    return {
        "number": releases.release_number(item.request_id),
        "title": item.title,
        "caption": item.caption,
        "chart": item.spec,
        "release": item.record.to_public() if item.record is not None else None,
    }


@router.get("/public/api/open-data")
def api_open_data(lab: LabDep) -> JSONResponse:
    return JSONResponse(
        {
            "refresh_s": int(open_data.REFRESH_S),
            "feeds": [
                {
                    "dataset": r.dataset,
                    "title": r.title,
                    "department": r.department,
                    "as_of": r.as_of,
                    "columns": [{"name": c, "zh": z, "en": e} for c, z, e in r.columns],
                    "rows": r.rows,
                }
                for r in open_data.latest(lab)
            ],
        },
        headers={"Cache-Control": "public, max-age=60"},
    )
