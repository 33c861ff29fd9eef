"""API: who uses a department's data (使用情况), per dataset and for the whole department."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from countylab.catalog import usage
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id

router = APIRouter(prefix="/api", tags=["usage"])


@router.get("/datasets/{dataset_id}/usage")
def dataset_usage(dataset_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Grants, DP queries per project and month, jobs, releases and models of one dataset
    (providers of its department, stewards, admins); never query text or file contents."""
    with lab.read() as s:
        return usage.dataset_usage(s, actor, dataset_id)


@router.get("/usage")
def department_usage(actor: Actor, lab: LabDep) -> dict[str, Any]:
    """One summary line per dataset of the caller's department (stewards and admins: all)."""
    with lab.read() as s:
        return {"items": usage.department_usage(s, actor)}
