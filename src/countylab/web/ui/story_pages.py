"""The showcase inside the lab (成果展示中心): released results for leaders, stories and the gallery
for the operator, and retraction for stewards and checkers.

* ``/showcase`` — every user with ``showcase.view``: the released results (a leader reads
  released results here, and nothing else of the airlock), the published stories and links to
  the public pages; with ``showcase.manage``: the stories of every project and the gallery.
* ``/showcase/releases/{request_id}`` — one *released* result: its public record and its released
  tables.  A request under review, a draft or a retracted one is 404 here.
* ``/showcase/stories/{project_id}`` — the operator writes and publishes a project's story.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select

from countylab.identity.access import authorize, has_permission
from countylab.identity.roles import Permission
from countylab.showcase import cache, gallery, releases, stories, withdrawal
from countylab.storage.airlock_models import ReleaseFile, ReleaseRequest
from countylab.storage.models import Project
from countylab.storage.privacy_models import QueryRun
from countylab.web.deps import Actor, LabDep
from countylab.web.params import FormId, Id
from countylab.web.ui.common import form_action, render

router = APIRouter(include_in_schema=False)


def _released_tables(s: object, project_id: int | None = None) -> list[dict[str, object]]:
    """Released CSV/TSV files (the operator's choices for charts), newest first."""
    q = (
        select(ReleaseFile, ReleaseRequest)
        .join(ReleaseRequest, ReleaseRequest.id == ReleaseFile.request_id)
        .where(ReleaseRequest.state == "released", ReleaseFile.released_path.is_not(None))
        .order_by(ReleaseRequest.id.desc(), ReleaseFile.id)
    )
    if project_id is not None:
        q = q.where(ReleaseRequest.project_id == project_id)
    out = []
    for f, r in s.execute(q):  # type: ignore[attr-defined]
        if f.name.lower().endswith((".csv", ".tsv")):
            out.append(
                {"id": f.id, "name": f.name, "number": releases.release_number(r.id), "request_id": r.id}
            )
    return out


@router.get("/showcase")
def showcase_home(request: Request, actor: Actor, lab: LabDep) -> Response:
    authorize(actor, Permission.showcase_view, target="showcase")
    manage = has_permission(actor, Permission.showcase_manage)
    with lab.read() as s:
        released = releases.showable_requests(s, actor)
        story_rows = stories.list_stories(s, published_only=not manage)
        projects = list(s.execute(select(Project).order_by(Project.id)).scalars()) if manage else []
        items = gallery.items(s, showable_only=False) if manage else []
        tables = _released_tables(s) if manage else []
    by_project = {st.project_id: st for st in story_rows}
    return render(
        request,
        "showcase.html",
        released=released,
        stories=story_rows,
        projects=projects,
        by_project=by_project,
        items=items,
        tables=tables,
        can_manage=manage,
        can_retract=has_permission(actor, Permission.release_review),
    )


@router.get("/showcase/releases/{request_id}")
def release_page(request: Request, request_id: Id, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        view = releases.leader_view(s, actor, request_id)
    return render(
        request,
        "showcase_release.html",
        view=view,
        request_id=request_id,
        can_retract=has_permission(actor, Permission.release_review),
    )


@router.post("/showcase/releases/{request_id}/retract")
def retract(
    request: Request, request_id: Id, actor: Actor, lab: LabDep, reason: Annotated[str, Form()] = ""
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            withdrawal.retract(s, actor, request_id, reason)
        cache.clear()

    return form_action(request, "/showcase", run, "stories.flash.retracted")


@router.get("/showcase/stories/{project_id}")
def story_page(request: Request, project_id: Id, actor: Actor, lab: LabDep) -> Response:
    authorize(actor, Permission.showcase_manage, target=f"project:{project_id}")
    with lab.read() as s:
        project = s.get(Project, project_id)
        story = stories.get_story(s, project_id)
        charts = stories.chart_views(s, story) if story is not None else []
        tables = _released_tables(s, project_id)
        queries = list(
            s.execute(
                select(QueryRun)
                .where(
                    QueryRun.project_id == project_id,
                    QueryRun.mode == "dp",
                    QueryRun.status.in_(("answered", "cached")),
                )
                .order_by(QueryRun.id.desc())
                .limit(50)
            ).scalars()
        )
    if project is None:
        from countylab.errors import NotFound

        raise NotFound(f"项目 {project_id} 不存在", f"project {project_id} not found")
    return render(
        request,
        "story_edit.html",
        project=project,
        story=story,
        charts=charts,
        tables=tables,
        queries=queries,
    )


@router.post("/showcase/stories/{project_id}")
def save_story(
    request: Request,
    project_id: Id,
    actor: Actor,
    lab: LabDep,
    title: Annotated[str, Form()] = "",
    organisation: Annotated[str, Form()] = "",
    scenario_text: Annotated[str, Form()] = "",
    summary: Annotated[str, Form()] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            stories.save_story(
                s,
                actor,
                project_id,
                title=title,
                organisation=organisation,
                scenario_text=scenario_text,
                summary=summary,
            )
        cache.clear()

    return form_action(request, f"/showcase/stories/{project_id}", run, "flash.saved")


@router.post("/showcase/stories/{project_id}/charts")
def add_chart(
    request: Request,
    project_id: Id,
    actor: Actor,
    lab: LabDep,
    file_id: FormId,
    kind: Annotated[str, Form()] = "table",
    title: Annotated[str, Form()] = "",
    category_column: Annotated[str, Form()] = "",
    value_columns: Annotated[str, Form()] = "",
    unit: Annotated[str, Form()] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            stories.add_release_chart(
                s,
                actor,
                project_id,
                file_id,
                kind=kind,
                title=title,
                category_column=category_column.strip(),
                value_columns=_split(value_columns),
                unit=unit.strip(),
            )
        cache.clear()

    return form_action(request, f"/showcase/stories/{project_id}", run, "stories.flash.chart_added")


@router.post("/showcase/stories/{project_id}/dp-charts")
def add_dp_chart(
    request: Request,
    project_id: Id,
    actor: Actor,
    lab: LabDep,
    query_id: FormId,
    title: Annotated[str, Form()] = "",
    category_column: Annotated[str, Form()] = "",
    value_column: Annotated[str, Form()] = "",
    unit: Annotated[str, Form()] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            stories.add_dp_chart(
                s,
                actor,
                project_id,
                query_id,
                title=title.strip(),
                category_column=category_column.strip(),
                value_column=value_column.strip(),
                unit=unit.strip(),
            )
        cache.clear()

    return form_action(request, f"/showcase/stories/{project_id}", run, "stories.flash.chart_added")


@router.post("/showcase/stories/{project_id}/charts/{chart_id}/remove")
def remove_chart(request: Request, project_id: Id, chart_id: Id, actor: Actor, lab: LabDep) -> Response:
    def run() -> None:
        with lab.tx() as s:
            stories.remove_chart(s, actor, project_id, chart_id)
        cache.clear()

    return form_action(request, f"/showcase/stories/{project_id}", run, "stories.flash.chart_removed")


@router.post("/showcase/stories/{project_id}/publish")
def publish(
    request: Request, project_id: Id, actor: Actor, lab: LabDep, published: Annotated[str, Form()] = "1"
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            stories.set_published(s, actor, project_id, published == "1")
        cache.clear()

    return form_action(request, f"/showcase/stories/{project_id}", run, "flash.saved")


@router.post("/showcase/gallery")
def add_item(
    request: Request,
    actor: Actor,
    lab: LabDep,
    file_id: FormId,
    title: Annotated[str, Form()] = "",
    caption: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "table",
    category_column: Annotated[str, Form()] = "",
    value_columns: Annotated[str, Form()] = "",
    unit: Annotated[str, Form()] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            gallery.add_item(
                s,
                actor,
                file_id,
                title=title,
                caption=caption,
                kind=kind,
                category_column=category_column.strip(),
                value_columns=_split(value_columns),
                unit=unit.strip(),
            )
        cache.clear()

    return form_action(request, "/showcase", run, "stories.flash.item_added")


@router.post("/showcase/gallery/{request_id}/remove")
def remove_item(request: Request, request_id: Id, actor: Actor, lab: LabDep) -> Response:
    def run() -> None:
        with lab.tx() as s:
            gallery.remove_item(s, actor, request_id)
        cache.clear()

    return form_action(request, "/showcase", run, "stories.flash.item_removed")


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.replace("，", ",").split(",") if p.strip()]
