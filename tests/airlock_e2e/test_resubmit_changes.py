"""Resubmission with a changed file list, replies to checkers, and what changed between rounds.

A checker returns a request with a comment; the developer drops one file, changes a table
(a newer job of the same project) and replies; the new round reruns the checks; the checker
sees added/removed/changed files and the changed cells, the developer sees counts only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from countylab.storage.airlock_changes_models import ReleaseRoundChange
from countylab.storage.models import AuditEvent
from tests.airlock_e2e.conftest import SAFE_TABLE, World

TABLE_2 = "village,residents\n青禾村,40\n东岭村,50\n南湾村,40\n".encode()
NOTES = b"Method notes: counts of residents by village.\n"


def _returned(world: World) -> dict[str, Any]:
    job = world.make_job({"by_village.csv": SAFE_TABLE, "notes.txt": NOTES})
    dev, checker = world.client("dev"), world.client("checker")
    body = {
        "job_id": job,
        "title": "按村统计",
        "files": [
            {"name": "analyse/by_village.csv", "count_columns": ["residents"]},
            {"name": "analyse/notes.txt"},
        ],
        "submit": True,
    }
    req = dev.post("/api/airlock/requests", json=body).json()
    assert req["state"] == "under_review", req
    said = checker.post(f"/api/airlock/requests/{req['id']}/comments", json={"body": "说明文件不需要出域"})
    assert said.status_code == 201, said.text
    back = checker.post(
        f"/api/airlock/requests/{req['id']}/votes", json={"choice": "return", "comment": "改"}
    )
    assert back.status_code == 200 and back.json()["state"] == "returned", back.text
    return {"req": req, "comment_id": said.json()["id"], "job": job}


def test_resubmit_with_new_job_fewer_files_and_replies(world: World) -> None:
    first = _returned(world)
    rid = first["req"]["id"]
    newer = world.make_job({"by_village.csv": TABLE_2, "notes.txt": NOTES})
    dev = world.client("dev")
    bad = dev.post(
        f"/api/airlock/requests/{rid}/resubmit",
        json={"job_id": newer, "files": [{"name": "analyse/by_village.csv"}], "replies": {"999999": "x"}},
    )
    assert bad.status_code == 422  # a reply to a comment of another request: nothing happens
    assert dev.get(f"/api/airlock/requests/{rid}").json()["state"] == "returned"
    resp = dev.post(
        f"/api/airlock/requests/{rid}/resubmit",
        json={
            "job_id": newer,
            "files": [{"name": "analyse/by_village.csv", "count_columns": ["residents"]}],
            "replies": {str(first["comment_id"]): "已去掉说明文件，并更新了东岭村的数字"},
        },
    )
    assert resp.status_code == 200, resp.text
    mine = resp.json()
    assert mine["round"] == 2 and mine["state"] == "under_review", mine  # checks reran and passed
    # the developer sees counts, never names
    assert mine["changes"]["counts"] == {"changed": 1, "removed": 1} and mine["changes"]["files"] == []
    reply = next(c for c in mine["comments"] if c["reply_to"] == first["comment_id"])
    assert "东岭村" in reply["body"]
    seen = world.client("checker").get(f"/api/airlock/requests/{rid}").json()
    files = {f["name"]: f for f in seen["changes"]["files"]}
    assert files["analyse/notes.txt"]["status"] == "removed"
    table = files["analyse/by_village.csv"]["table"]
    assert files["analyse/by_village.csv"]["status"] == "changed" and table["shape"] == {
        "old": [3, 2],
        "new": [3, 2],
    }
    assert table["cells_changed"] == 1
    assert table["cells"] == [{"row": 2, "column": "residents", "old": "40", "new": "50"}]
    with world.lab.read() as s:
        rows = list(
            s.execute(select(ReleaseRoundChange).where(ReleaseRoundChange.request_id == rid)).scalars()
        )
        assert [r.round for r in rows] == [2]
        actions = [
            e.action
            for e in s.execute(select(AuditEvent).where(AuditEvent.target == f"release:{rid}")).scalars()
        ]
    assert "release.resubmit" in actions and actions.count("release.comment") == 2


def test_resubmit_page_lists_selectors_and_reply_boxes(world: World) -> None:
    from fastapi.testclient import TestClient

    from countylab.web.app import create_app
    from tests.support import browser_login

    first = _returned(world)
    rid = first["req"]["id"]
    web = TestClient(create_app(world.lab), raise_server_exceptions=False)
    csrf = browser_login(web, "dev")
    page = web.get(f"/airlock/requests/{rid}")
    assert page.status_code == 200 and 'id="resubmit-form"' in page.text
    assert (
        'value="analyse/notes.txt" checked' in page.text
        and f'name="reply.{first["comment_id"]}"' in page.text
    )
    done = web.post(
        f"/airlock/requests/{rid}/resubmit",
        data={
            "csrf_token": csrf,
            "job_id": str(first["job"]),
            "selector": ["analyse/by_village.csv"],
            f"reply.{first['comment_id']}": "去掉了说明文件",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    after = world.client("checker").get(f"/api/airlock/requests/{rid}").json()
    assert after["round"] == 2 and after["files_count"] == 1
    assert {f["name"]: f["status"] for f in after["changes"]["files"]} == {
        "analyse/by_village.csv": "unchanged",
        "analyse/notes.txt": "removed",
    }
    checker = TestClient(create_app(world.lab), raise_server_exceptions=False)
    browser_login(checker, "checker")
    shown = checker.get(f"/airlock/requests/{rid}")
    assert 'id="round-changes"' in shown.text and "notes.txt" in shown.text and "去掉了说明文件" in shown.text


def test_cells_of_a_round_that_failed_its_checks_are_never_shown(world: World) -> None:
    """Round 1 failed (an ID number in the table): nobody saw its files, so the change into
    round 2 gives the shape and the number of differing cells, not their values."""
    from tests.airlock_e2e.conftest import RESIDENTS

    leaky = f"village,residents,contact\n青禾村,41,{RESIDENTS[0][1]}\n东岭村,40,x\n南湾村,40,y\n".encode()
    first = world.make_job({"by_village.csv": leaky})
    dev = world.client("dev")
    body = {"job_id": first, "files": [{"name": "analyse/by_village.csv", "count_columns": ["residents"]}]}
    req = dev.post("/api/airlock/requests", json=body | {"submit": True}).json()
    assert req["state"] == "returned", req
    fixed = world.make_job({"by_village.csv": SAFE_TABLE})
    again = dev.post(f"/api/airlock/requests/{req['id']}/resubmit", json=body | {"job_id": fixed})
    assert again.status_code == 200 and again.json()["state"] == "under_review", again.text
    seen = world.client("checker").get(f"/api/airlock/requests/{req['id']}")
    [change] = seen.json()["changes"]["files"]
    assert change["status"] == "changed" and change["table"]["columns_removed"] == ["contact"]
    assert change["table"]["cells_changed"] == 1 and change["table"]["cells"] == []
    assert RESIDENTS[0][1] not in seen.text and "41" not in json_text(change)


def json_text(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
