"""Meta-test world for the brief downloads (GET only: briefs add no unsafe route).

setup() publishes a story for the World's project, so the read walk gets an answer from
``/public/projects/{project_id}`` and the brief routes (a draft story is 404 on the public side,
a project without a story is 404 for its in-lab brief)."""

from __future__ import annotations

from typing import Any

from countylab.identity.access import SYSTEM
from countylab.showcase import stories

EXAMPLES: dict[tuple[str, str], Any] = {}


def setup(world: Any) -> None:
    with world.lab.tx() as s:
        if stories.get_story(s, world.project_id) is None:
            stories.save_story(s, SYSTEM, world.project_id, title="成果", summary="摘要")
        stories.set_published(s, SYSTEM, world.project_id, True)
