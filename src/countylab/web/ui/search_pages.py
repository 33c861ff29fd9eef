"""Page of the search vocabulary (检索同义词): the built-in groups, and the stewards' own groups
with add, edit and remove (the catalog page's search box uses both)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from countylab.catalog import search_service
from countylab.catalog.synonyms import BUILTIN
from countylab.identity.access import has_permission
from countylab.identity.roles import Permission, Role
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id
from countylab.web.ui.common import form_action, render

router = APIRouter(include_in_schema=False)
BACK = "/search/synonyms"


@router.get("/search/synonyms")
def synonyms_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        groups = search_service.list_groups(s)
    can_edit = Role.admin in actor.roles or has_permission(actor, Permission.dataset_grade)
    return render(request, "synonyms.html", groups=groups, builtin=BUILTIN, can_edit=can_edit)


@router.post("/search/synonyms")
def create_group(
    request: Request,
    actor: Actor,
    lab: LabDep,
    words: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            search_service.create_group(s, actor, [words], note)

    return form_action(request, BACK, run, "search.flash.created")


@router.post("/search/synonyms/{group_id}")
def update_group(
    request: Request,
    group_id: Id,
    actor: Actor,
    lab: LabDep,
    words: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            search_service.update_group(s, actor, group_id, [words], note)

    return form_action(request, BACK, run, "search.flash.updated")


@router.post("/search/synonyms/{group_id}/delete")
def delete_group(request: Request, group_id: Id, actor: Actor, lab: LabDep) -> Response:
    def run() -> None:
        with lab.tx() as s:
            search_service.delete_group(s, actor, group_id)

    return form_action(request, BACK, run, "search.flash.deleted")
