"""Meta-test examples for the DP SQL gateway's state-changing routes (queries and budgets)."""

from __future__ import annotations

from typing import Any

from tests.meta.example import Example

EXAMPLES: dict[tuple[str, str], Any] = {
    ("POST", "/api/query"): Example(
        "dev", {"sql": "SELECT COUNT(*) FROM d1", "epsilon": 0.1, "project_id": 0}
    ),
    ("PUT", "/api/projects/{project_id}/budgets/{dataset_id}"): Example("steward", {"epsilon": 1.0}),
    ("POST", "/query"): Example(
        "dev", {"sql": "SELECT COUNT(*) FROM d1", "epsilon": "0.1", "mode": "dp", "project_id": "0"}
    ),
    ("POST", "/query/budgets"): Example("steward", {"project_id": "0", "dataset_id": "0", "epsilon": "1"}),
}


def setup(world: Any) -> None:
    """Bodies name the World's project and dataset (their ids are known only now)."""
    EXAMPLES[("POST", "/api/query")].body["project_id"] = world.project_id  # type: ignore[index]
    EXAMPLES[("POST", "/query")].body["project_id"] = str(world.project_id)  # type: ignore[index]
    budget_form = EXAMPLES[("POST", "/query/budgets")].body
    assert budget_form is not None
    budget_form["project_id"], budget_form["dataset_id"] = str(world.project_id), str(world.dataset_id)
