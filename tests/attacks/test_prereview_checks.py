"""Check reports as a channel: what a returned request tells the developer.

A failing check must name the rule, never the content or its position: parser errors that
echo a cell, line numbers of a leakage match or row numbers of a small cell are all ways for a
job to get data out "in the error message".  The checker sees the details (positive control).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from countylab.storage.models import AuditEvent
from tests.airlock_e2e.conftest import RESIDENTS, World, build_world, xlsx_bytes

ID = RESIDENTS[5][1]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("check-reports"))
    yield w
    w.lab.close()


def _returned(world: World, files: dict[str, bytes]) -> tuple[dict[str, Any], dict[str, str]]:
    job = world.make_job(files)
    body = {"job_id": job, "title": "t", "files": [{"name": "*"}], "submit": True}
    resp = world.client("dev").post("/api/airlock/requests", json=body)
    assert resp.status_code == 201, resp.text
    req = resp.json()
    assert req["state"] == "returned", req
    assert req["return_reason"] != "check_failed_to_run", _why_failed_to_run(world, req["id"])
    dev = world.client("dev")
    seen = {
        "create": resp.text,
        "view": dev.get(f"/api/airlock/requests/{req['id']}").text,
        "list": dev.get("/api/airlock/requests").text,
        "page": dev.get(f"/airlock/requests/{req['id']}").text,
        "page_en": dev.get(f"/airlock/requests/{req['id']}", headers={"Accept-Language": "en"}).text,
    }
    return req, seen


def _why_failed_to_run(world: World, request_id: int) -> list[str]:
    """What the audit log says about a worker that failed (time, memory, died, an exception)."""
    with world.lab.read() as s:
        rows = s.execute(
            select(AuditEvent.details).where(
                AuditEvent.action == "release.checks", AuditEvent.target == f"release:{request_id}"
            )
        ).scalars()
        return list(rows)


def _only_rules(req: dict[str, Any]) -> None:
    assert req["failed_rules"], req
    for f in req["files"]:
        assert f["name"] is None
        for c in f["checks"]:
            assert set(c) == {"check", "status"}, c


# a table whose 37th line holds the ID: the line number would be a channel too
FILLER = "".join(f"青禾村{i},{40 + i}\n" for i in range(35))
CASES = {
    "id_in_a_cell": f"village,residents\n{FILLER}{ID},40\n".encode(),
    "parser_echo_extra_field": f"village,residents\n青禾村,40\n东岭村,40,{ID}\n".encode(),
    "parser_echo_bad_utf8": b"village,residents\n" + ID.encode() + b",\xff\xfe\n",
    "id_in_a_header": f"village,{ID}\n{FILLER}".encode(),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_returned_request_names_the_rule_never_the_content_or_position(world: World, case: str) -> None:
    req, seen = _returned(world, {"t.csv": CASES[case]})
    _only_rules(req)
    for surface, text in seen.items():
        assert ID not in text, surface
        # a round number (round 2, 第 2 轮) is not a position in the file
        plain = re.sub(r"第\s*\d+\s*轮", "", text.replace("round", ""))
        assert not re.search(r"(line|行|row|第)\s*\d", plain), surface
    checker = world.client("checker").get(f"/api/airlock/requests/{req['id']}").json()
    assert checker["files"][0]["checks"] and "messages_en" in checker["files"][0]["checks"][0]


def test_xlsx_problems_are_named_not_described(world: World) -> None:
    def build(wb: Any) -> None:
        ws = wb.active
        ws.append(["village", "residents"])
        ws.append([ID, "=1+1"])
        hidden = wb.create_sheet(f"s{ID[-6:]}")
        hidden.append([ID])
        hidden.sheet_state = "hidden"

    req, seen = _returned(world, {"t.xlsx": xlsx_bytes(build)})
    _only_rules(req)
    for surface, text in seen.items():
        assert ID not in text and f"s{ID[-6:]}" not in text, surface


def test_the_checker_sees_the_details(world: World) -> None:
    req, _ = _returned(world, {"t.csv": CASES["id_in_a_cell"]})
    steward = world.client("steward").get(f"/api/airlock/requests/{req['id']}").json()
    assert steward["details"] and steward["files"][0]["name"] == "analyse/t.csv"
    results = {c["check"]: c for c in steward["files"][0]["checks"]}
    failing = [c for c in results.values() if c["status"] == "fail"]
    assert failing and any(c["messages_en"] for c in failing)
