"""Meta-test examples for the DP SQL gateway's state-changing routes (queries, budgets, top-ups)."""

from __future__ import annotations

from typing import Any

from countylab.identity.access import SYSTEM
from countylab.privacy import topups
from tests.meta.example import Example

EXAMPLES: dict[tuple[str, str], Any] = {
    ("POST", "/api/query"): Example(
        "dev", {"sql": "SELECT COUNT(*) FROM d1", "epsilon": 0.1, "project_id": 0}
    ),
    ("PUT", "/api/projects/{project_id}/budgets/{dataset_id}"): Example("steward", {"epsilon": 1.0}),
    ("POST", "/api/projects/{project_id}/budget-topups"): Example(
        "dev", {"dataset_id": 0, "epsilon": 0.5, "reason": "第二期调研"}
    ),
    ("POST", "/api/budget-topups/{topup_id}/decision"): Example("steward", {"approve": True}),
    ("POST", "/query"): Example(
        "dev", {"sql": "SELECT COUNT(*) FROM d1", "epsilon": "0.1", "project_id": "0"}
    ),
    ("POST", "/query/budgets"): Example("steward", {"project_id": "0", "dataset_id": "0", "epsilon": "1"}),
    ("POST", "/query/topups"): Example(
        "dev", {"project_id": "0", "dataset_id": "0", "epsilon": "0.5", "reason": "第二期调研"}
    ),
    ("POST", "/query/topups/{topup_id}/decision"): Example(
        "steward", {"project_id": "0", "decision": "refuse"}
    ),
}


def setup(world: Any) -> None:
    """Bodies name the World's project and dataset (their ids are known only now)."""
    EXAMPLES[("POST", "/api/query")].body["project_id"] = world.project_id  # type: ignore[index]
    EXAMPLES[("POST", "/query")].body["project_id"] = str(world.project_id)  # type: ignore[index]
    EXAMPLES[("POST", "/api/projects/{project_id}/budget-topups")].body["dataset_id"] = world.dataset_id  # type: ignore[index]
    for key in (("POST", "/query/budgets"), ("POST", "/query/topups")):
        form = EXAMPLES[key].body
        assert form is not None
        form["project_id"], form["dataset_id"] = str(world.project_id), str(world.dataset_id)
    EXAMPLES[("POST", "/query/topups/{topup_id}/decision")].body["project_id"] = str(world.project_id)  # type: ignore[index]


def fill(world: Any, path: str, actor: str) -> dict[str, str]:
    """A fresh pending top-up request (by the system, so no actor decides their own) per call."""
    if "{topup_id}" not in path:
        return {}
    with world.lab.tx() as s:
        row = topups.request_topup(
            s, SYSTEM, world.project_id, world.dataset_id, epsilon=0.5, reason="meta-test"
        )
    return {"topup_id": str(row["id"])}
