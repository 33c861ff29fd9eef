"""Pages of dataset usage (使用情况): the department overview and one dataset's usage."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from countylab.catalog import usage
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id
from countylab.web.ui.common import render

router = APIRouter(include_in_schema=False)


@router.get("/usage")
def department_page(request: Request, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        rows = usage.department_usage(s, actor)
    return render(request, "dataset_usage.html", overview=rows, u=None)


@router.get("/datasets/{dataset_id}/usage")
def dataset_page(request: Request, dataset_id: Id, actor: Actor, lab: LabDep) -> Response:
    with lab.read() as s:
        u = usage.dataset_usage(s, actor, dataset_id)
    return render(request, "dataset_usage.html", overview=None, u=u)
