"""A release lab for the hidden-content attacks: each case goes through the real API.

:func:`attempt` makes a finished job with the given outbox files, asks for their release,
lets two independent checkers read every page of every file's complete preview and approve,
then downloads what was released.  It returns what happened at each step, so a test can
assert that the downloaded bytes hold none of the hidden payload, or that the file was
refused with the rule named.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.airlock_e2e.conftest import World, build_world

PAYLOAD = "LEAK-330102195001011234-ZHANGWEI"
"""What a hostile job tries to get out; never in a released file unless a checker saw it."""


@dataclass
class Outcome:
    request: dict[str, Any]  # the request as a checker sees it after the automatic checks
    previews: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name -> every page
    downloads: dict[str, bytes] = field(default_factory=dict)  # name -> released bytes

    @property
    def state(self) -> str:
        return str(self.request["state"])

    def rules(self, name: str) -> set[str]:
        """The rules that failed for ``name`` (check names and their reasons)."""
        f = next(f for f in self.request["files"] if f["name"].endswith(name))
        failed = [c for c in f["checks"] if c["status"] == "fail"]
        return {c["check"] for c in failed} | {str(c["details"].get("reason")) for c in failed}

    def preview_text(self, name: str) -> str:
        """Every cell, line and fact a checker was shown for ``name``, over all pages."""
        out: list[str] = []
        for page in self.previews[name]:
            out += [n["en"] for n in page["notes"]]
            out += [cell for row in page["section"]["rows"] for cell in row["cells"]]
        return "\n".join(out)


def attempt(world: World, files: dict[str, bytes]) -> Outcome:
    job = world.make_job(files)
    body = {
        "job_id": job,
        "title": "隐藏内容",
        "note": "",
        "files": [{"name": f"analyse/{n}", "description": n, "controls": "无"} for n in files],
        "submit": True,
    }
    resp = world.client("dev").post("/api/airlock/requests", json=body)
    assert resp.status_code == 201, resp.text
    rid = resp.json()["id"]
    c1, c2 = world.client("checker"), world.client("checker2")
    outcome = Outcome(c1.get(f"/api/airlock/requests/{rid}").json())
    if outcome.state != "under_review":
        for f in outcome.request["files"]:  # nothing of a refused request is served
            assert c1.get(f"/api/airlock/files/{f['id']}/preview").status_code == 409
        return outcome
    for f in outcome.request["files"]:
        pages = [c1.get(f"/api/airlock/files/{f['id']}/preview/pages?page=1").json()]
        while pages[-1]["page"] < pages[-1]["page_count"]:
            nxt = c1.get(f"/api/airlock/files/{f['id']}/preview/pages?page={pages[-1]['page'] + 1}")
            assert nxt.status_code == 200, nxt.text
            pages.append(nxt.json())
        outcome.previews[Path(f["name"]).name] = pages
    for checker in (c1, c2):
        voted = checker.post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
        assert voted.status_code == 200, voted.text
    outcome.request = c1.get(f"/api/airlock/requests/{rid}").json()
    assert outcome.state == "released", outcome.request
    dev = world.client("dev")
    for f in outcome.request["files"]:
        got = dev.get(f"/api/airlock/files/{f['id']}/download")
        assert got.status_code == 200, got.text
        # the released file is the one the checkers previewed, and its hash is on record
        sha = hashlib.sha256(got.content).hexdigest()
        assert got.headers["x-content-sha256"] == sha == f["released_sha256"]
        assert sha == outcome.previews[Path(f["name"]).name][0]["sha256"]
        outcome.downloads[Path(f["name"]).name] = got.content
    return outcome


def hidden_content_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A lab with a 一般3级 dataset and two independent checkers (use as a module fixture)."""
    world = build_world(tmp_path_factory.mktemp("hidden-content"))
    yield world
    world.lab.close()
