"""Meta-test examples of the search vocabulary's state-changing routes (synonym groups).

setup() gives the World one steward group, so edit and remove have something to act on.
"""

from __future__ import annotations

from typing import Any

from countylab.catalog import search_service
from countylab.identity.access import SYSTEM
from tests.meta.example import Example

EXAMPLES = {
    ("POST", "/api/search/synonyms"): Example("steward", {"words": ["低保", "最低生活保障"]}),
    ("PUT", "/api/search/synonyms/{group_id}"): Example("steward", {"words": ["低保", "低保户"]}),
    ("DELETE", "/api/search/synonyms/{group_id}"): Example("steward"),
    ("POST", "/search/synonyms"): Example("steward", {"words": "低保，最低生活保障"}),
    ("POST", "/search/synonyms/{group_id}"): Example("steward", {"words": "低保，低保户"}),
    ("POST", "/search/synonyms/{group_id}/delete"): Example("steward"),
}


def setup(world: Any) -> None:
    with world.lab.tx() as s:
        group = search_service.create_group(s, SYSTEM, ["乡村振兴", "扶贫"], "县里的说法")
        world.values["group_id"] = str(group.id)
