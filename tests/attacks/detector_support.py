"""Stage of the airlock detector and output-library attacks: real release requests via the API.

One lab per test module (the airlock world of ``tests.airlock_e2e``: a 一般3级 residents
dataset with ID numbers, names and phones, an honest developer's project, another project,
independent checkers).  :func:`submit` makes a finished job with the attacker's outbox files,
asks for their release as the developer, and returns the request as a checker sees it (with
every check's details), so tests assert on what the lab decided, not on what it told the
developer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from countylab.identifiers import id_check_char
from countylab.output import Outputs
from countylab.output.sidecar import SUFFIX
from tests.airlock_e2e.conftest import RESIDENTS, World, build_world

ID = RESIDENTS[0][1]  # an ID number of a source resident
NAME = RESIDENTS[0][2]
PHONE = RESIDENTS[0][3]


def fresh_id(n: int = 7) -> str:
    """A valid ID number of nobody in the source (the PII patterns must still catch it)."""
    body = f"4401061985070{n:01d}{n % 10}{(n * 7) % 10}{(n * 3) % 10}"[:17]
    return body + id_check_char(body)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("detectors"))
    yield w
    w.lab.close()


def submit(
    world: World,
    files: dict[str, bytes],
    names: Sequence[str] | None = None,
    *,
    project: str = "main",
    filter_text: str = "",
    count_columns: Sequence[str] = (),
) -> dict[str, Any]:
    """Release request for ``names`` (default: every file but sidecars) of a new finished job;
    the request as the checker sees it, with ``files`` keyed by name."""
    job = world.make_job(files, project=project)
    chosen = list(names) if names is not None else [n for n in files if not n.endswith(SUFFIX)]
    body = {
        "job_id": job,
        "title": "攻击",
        "note": "",
        "submit": True,
        "files": [
            {
                "name": f"analyse/{n}",
                "description": "",
                "controls": "",
                "filter": filter_text,
                "count_columns": list(count_columns),
            }
            for n in chosen
        ],
    }
    who = "dev" if project == "main" else "dev2"
    resp = world.client(who).post("/api/airlock/requests", json=body)
    assert resp.status_code == 201, resp.text
    rid = resp.json()["id"]
    seen = world.client("checker").get(f"/api/airlock/requests/{rid}")
    assert seen.status_code == 200, seen.text
    req = dict(seen.json())
    req["by_name"] = {f["name"].removeprefix("analyse/"): f for f in req["files"]}
    return req


def checks_of(req: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in req["by_name"][name]["checks"]}


def failed(req: dict[str, Any], name: str, check: str) -> dict[str, Any]:
    """Assert the request was returned by the automatic checks with ``check`` failing on ``name``."""
    assert req["state"] == "returned", (req["state"], _summary(req))
    checks = checks_of(req, name)
    if check not in checks and checks["file_type"]["status"] == "fail":
        return checks["file_type"]  # refused even earlier (a preview rule): the content checks did not run
    result = checks[check]
    assert result["status"] == "fail", _summary(req)
    return result


def _summary(req: dict[str, Any]) -> str:
    return json.dumps(
        {f["name"]: [(c["check"], c["status"]) for c in f["checks"]] for f in req["files"]},
        ensure_ascii=False,
    )


def library_files(build: Any, tmp: Path) -> dict[str, bytes]:
    """The outbox a job using :class:`countylab.output.Outputs` leaves (outputs and sidecars)."""
    out = Outputs(tmp)
    build(out)
    return {p.relative_to(tmp).as_posix(): p.read_bytes() for p in sorted(tmp.rglob("*")) if p.is_file()}
