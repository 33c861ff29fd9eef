"""Meta-test examples for the showcase's in-lab routes (stories, gallery, retraction).

fill() makes what each route needs, fresh for each actor: a released request of the World's
project (the airlock's job from examples_airlock, approved by its checker), the project's story,
a chart of it, a gallery item.  Bodies that name a file take the new file's id (set in fill, which
runs before the body is read)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from countylab.airlock.service import FileChoice
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.showcase import gallery, stories
from countylab.storage.airlock_models import ReleaseFile
from countylab.storage.privacy_models import CachedAnswer, QueryRun
from tests.meta.example import Example

EXAMPLES: dict[tuple[str, str], Example] = {
    ("POST", "/showcase/stories/{project_id}"): Example("admin", {"title": "成果", "summary": "摘要"}),
    ("POST", "/showcase/stories/{project_id}/charts"): Example(
        "admin", {"file_id": "0", "kind": "bar", "category_column": "age_band", "value_columns": "residents"}
    ),
    ("POST", "/showcase/stories/{project_id}/dp-charts"): Example(
        "admin", {"query_id": "0", "title": "人数", "value_column": ""}
    ),
    ("POST", "/showcase/stories/{project_id}/charts/{chart_id}/remove"): Example("admin"),
    ("POST", "/showcase/stories/{project_id}/publish"): Example("admin", {"published": "1"}),
    ("POST", "/showcase/gallery"): Example("admin", {"file_id": "0", "kind": "table", "title": "表"}),
    ("POST", "/showcase/gallery/{request_id}/remove"): Example("admin"),
    ("POST", "/showcase/releases/{request_id}/retract"): Example("steward", {"reason": "演示撤展"}),
}


def _released(world: Any) -> tuple[int, int]:
    """A released request of the World's project: (request id, file id)."""
    lab = world.lab
    with lab.tx() as s:
        req = lab.airlock.create(
            s, SYSTEM, int(world.values["job_id"]), [FileChoice("a/table.csv", count_columns=("residents",))]
        )
        lab.airlock.submit(s, SYSTEM, req.id)
        request_id = req.id
    lab.airlock.check_pending(lab.tx, request_id)
    with lab.tx() as s:
        checker = ids.principal_for(s, ids.get_user(s, world.users["checker"]), "system")
        assert lab.airlock.vote(s, checker, request_id, "approve").state == "released"
        file_id = s.execute(select(ReleaseFile.id).where(ReleaseFile.request_id == request_id)).scalar_one()
    return request_id, int(file_id)


def _story(world: Any) -> None:
    with world.lab.tx() as s:
        if stories.get_story(s, world.project_id) is None:
            stories.save_story(s, SYSTEM, world.project_id, title="成果", summary="摘要")


def fill(world: Any, path: str, actor: str) -> dict[str, str]:
    if not path.startswith("/showcase/"):
        return {}
    values: dict[str, str] = {}
    if path.startswith("/showcase/stories/{project_id}/") or path == "/showcase/stories/{project_id}":
        _story(world)
    if path.endswith("/charts") or path == "/showcase/gallery":
        _request_id, file_id = _released(world)
        EXAMPLES[("POST", path)].body["file_id"] = str(file_id)  # type: ignore[index]
    if path.endswith("/dp-charts"):
        with world.lab.read() as s:
            run = s.get(QueryRun, int(world.values["query_id"]))
            answer = s.execute(
                select(CachedAnswer).where(
                    CachedAnswer.project_id == run.project_id, CachedAnswer.fingerprint == run.fingerprint
                )
            ).scalar_one()
            column = answer.answer["columns"][-1]
        body = EXAMPLES[("POST", path)].body
        assert body is not None
        body["query_id"], body["value_column"] = world.values["query_id"], column
    if "{chart_id}" in path:
        _request_id, file_id = _released(world)
        with world.lab.tx() as s:
            chart = stories.add_release_chart(s, SYSTEM, world.project_id, file_id, kind="table")
            values["chart_id"] = str(chart.id)
    if path.startswith("/showcase/gallery/{request_id}"):
        request_id, file_id = _released(world)
        with world.lab.tx() as s:
            gallery.add_item(s, SYSTEM, file_id)
        values["request_id"] = str(request_id)
    if path.startswith("/showcase/releases/{request_id}"):
        request_id, _file_id = _released(world)
        values["request_id"] = str(request_id)
    return values
