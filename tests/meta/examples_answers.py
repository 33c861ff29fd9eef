"""Meta-test world for answers (``/api/queries/{query_id}/answer.{fmt}``): one answered DP query."""

from __future__ import annotations

from typing import Any

from countylab.identity import service as ids
from countylab.privacy.gateway import QueryRequest

EXAMPLES: dict[tuple[str, str], Any] = {}  # the export routes are GETs: nothing state-changing


def setup(world: Any) -> None:
    """The project's developer asks one question, so its stored answer can be downloaded."""
    with world.lab.tx() as s:
        dev = ids.principal_for(s, ids.get_user(s, world.users["dev"]), "system")
    answer = world.lab.gateway.run(
        dev, QueryRequest(sql="SELECT COUNT(*) FROM d1", project_id=world.project_id, epsilon=0.1)
    )
    world.values["query_id"] = str(answer.query_id)
    world.values["fmt"] = "xlsx"
