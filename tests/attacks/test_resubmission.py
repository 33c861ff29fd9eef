"""Resubmission attacks: a returned request is a new request in all but its history.

The reported win: a request on a 一般1级 job (automatic checks only) was returned, then
resubmitted with the files of a 4级 job; grade, datasets and checkers were not recomputed, so it
was released at once.  Variants here: weaker-to-stronger jobs, jobs of another project, another
project's developer, undeclared selectors, jobs that did not succeed, votes of an earlier round,
and what the rounds and the audit log record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from countylab.storage.airlock_rounds_models import ReleaseRound
from countylab.storage.models import AuditEvent
from tests.airlock_e2e.conftest import RESIDENTS, SAFE_TABLE, World, build_world

LEAKY = ("village,residents,contact\n青禾村,40," + RESIDENTS[0][1] + "\n").encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("resubmit"))
    with w.lab.tx() as s:  # a second, open dataset: jobs reading only it are 一般1级
        from countylab.identity import projects as prj
        from countylab.identity.access import SYSTEM
        from countylab.storage.models import Dataset

        base = s.get(Dataset, w.dataset_id)
        assert base is not None
        ds = Dataset(
            name="open_stats",
            title="公开统计",
            org_id=base.org_id,
            grade="general_1",
            tags=[],
            description="",
            contact="",
            update_frequency="static",
            privacy_unit="none",
            grade_confirmed=True,
            grade_reason="",
        )
        s.add(ds)
        s.flush()
        prj.grant_dataset(s, SYSTEM, w.project_id, ds.id)
        prj.grant_dataset(s, SYSTEM, w.other_project_id, ds.id)
    yield w
    w.lab.close()


def _request(world: World, job: int, *selectors: str, who: str = "dev") -> dict[str, Any]:
    body = {"job_id": job, "title": "t", "files": [{"name": s} for s in selectors], "submit": True}
    resp = world.client(who).post("/api/airlock/requests", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _returned_open_request(world: World) -> dict[str, Any]:
    """A 一般1级 request the automatic checks returned (an ID number in the table)."""
    weak = world.make_job({"t.csv": LEAKY}, datasets=("open_stats",))
    req = _request(world, weak, "analyse/t.csv")
    assert req["state"] == "returned" and req["grade"] == "general_1" and req["checkers_needed"] == 0, req
    return req


def test_resubmitting_with_a_stronger_jobs_files_recomputes_the_rule(world: World) -> None:
    req = _returned_open_request(world)
    strong = world.make_job({"t.csv": SAFE_TABLE}, datasets=("residents",))  # 一般3级
    again = world.client("dev").post(f"/api/airlock/requests/{req['id']}/resubmit", json={"job_id": strong})
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["state"] == "under_review", body  # not released at once
    assert body["grade"] == "general_3" and body["checkers_needed"] == 2 and body["job_id"] == strong
    assert [d["name"] for d in body["datasets"]] == ["residents"]


def test_resubmitting_with_a_job_that_read_both_takes_the_strictest(world: World) -> None:
    req = _returned_open_request(world)
    both = world.make_job({"t.csv": SAFE_TABLE}, datasets=("open_stats", "residents"))
    body = (
        world.client("dev").post(f"/api/airlock/requests/{req['id']}/resubmit", json={"job_id": both}).json()
    )
    assert body["grade"] == "general_3" and body["checkers_needed"] == 2 and body["state"] == "under_review"


def test_resubmitting_with_new_selectors_still_recomputes(world: World) -> None:
    req = _returned_open_request(world)
    strong = world.make_job({"other.csv": SAFE_TABLE}, datasets=("residents",))
    body = (
        world.client("dev")
        .post(
            f"/api/airlock/requests/{req['id']}/resubmit",
            json={"job_id": strong, "files": [{"name": "analyse/other.csv"}]},
        )
        .json()
    )
    assert body["checkers_needed"] == 2 and body["state"] == "under_review"


def test_a_job_of_another_project_cannot_be_carried_in(world: World) -> None:
    req = _returned_open_request(world)
    foreign = world.make_job({"t.csv": SAFE_TABLE}, project="other", datasets=("open_stats",))
    resp = world.client("dev").post(f"/api/airlock/requests/{req['id']}/resubmit", json={"job_id": foreign})
    assert resp.status_code == 403, resp.text
    after = world.client("dev").get(f"/api/airlock/requests/{req['id']}").json()
    assert after["state"] == "returned" and after["job_id"] != foreign and after["round"] == 1


def test_another_projects_developer_cannot_resubmit(world: World) -> None:
    req = _returned_open_request(world)
    own = world.make_job({"t.csv": SAFE_TABLE}, project="other", datasets=("open_stats",))
    resp = world.client("dev2").post(f"/api/airlock/requests/{req['id']}/resubmit", json={"job_id": own})
    assert resp.status_code == 403
    assert world.client("dev").get(f"/api/airlock/requests/{req['id']}").json()["round"] == 1


def test_selectors_must_be_declared_by_the_new_job(world: World) -> None:
    req = _returned_open_request(world)
    job = world.make_job({"t.csv": SAFE_TABLE}, datasets=("open_stats",))
    resp = world.client("dev").post(
        f"/api/airlock/requests/{req['id']}/resubmit",
        json={"job_id": job, "files": [{"name": "analyse/3301*"}]},
    )
    assert resp.status_code == 422 and resp.json()["error"]["details"]["reason"] == "undeclared_selector"


def test_a_job_that_did_not_succeed_cannot_be_used(world: World) -> None:
    req = _returned_open_request(world)
    failed = world.make_job({"t.csv": SAFE_TABLE}, datasets=("open_stats",), state="failed")
    resp = world.client("dev").post(f"/api/airlock/requests/{req['id']}/resubmit", json={"job_id": failed})
    assert resp.status_code == 409


def test_votes_of_an_earlier_round_never_count(world: World) -> None:
    job = world.make_job({"t.csv": SAFE_TABLE})
    req = _request(world, job, "analyse/t.csv")
    rid = req["id"]
    c1, c2 = world.client("checker"), world.client("checker2")
    assert c1.post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"}).status_code == 200
    back = c2.post(f"/api/airlock/requests/{rid}/votes", json={"choice": "return", "comment": "改"}).json()
    assert back["state"] == "returned"
    again = world.client("dev").post(f"/api/airlock/requests/{rid}/resubmit", json={}).json()
    assert again["state"] == "under_review" and again["round"] == 2
    after = c2.post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"}).json()
    assert after["state"] == "under_review", "checker 1's round-1 approval must not count in round 2"
    assert len(after["votes"]) == 1
    done = c1.post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"}).json()
    assert done["state"] == "released"


def test_a_third_checker_cannot_tip_a_new_round_with_old_votes(world: World) -> None:
    job = world.make_job({"t.csv": SAFE_TABLE})
    rid = _request(world, job, "analyse/t.csv")["id"]
    world.client("checker").post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
    world.client("checker2").post(
        f"/api/airlock/requests/{rid}/votes", json={"choice": "return", "comment": "请改"}
    )
    world.client("dev").post(f"/api/airlock/requests/{rid}/resubmit", json={})
    one = world.client("checker3").post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
    assert one.json()["state"] == "under_review"


def test_rounds_are_records_of_job_files_hashes_checks_and_votes(world: World) -> None:
    req = _returned_open_request(world)
    strong = world.make_job({"t.csv": SAFE_TABLE}, datasets=("residents",))
    world.client("dev").post(f"/api/airlock/requests/{req['id']}/resubmit", json={"job_id": strong})
    with world.lab.tx() as s:
        rows = list(
            s.execute(
                select(ReleaseRound).where(ReleaseRound.request_id == req["id"]).order_by(ReleaseRound.round)
            ).scalars()
        )
    assert [r.round for r in rows] == [1, 2]
    first, second = rows
    assert first.job_id == req["job_id"] and first.grade == "general_1" and first.checkers_needed == 0
    assert first.files[0]["sha256"] == hashlib.sha256(LEAKY).hexdigest()
    assert first.checks_status == "fail" and "pii_scan" in first.return_reason
    assert first.outcome is not None and first.outcome.startswith("returned") and first.closed_at is not None
    assert second.job_id == strong and second.grade == "general_3" and second.checkers_needed == 2
    assert second.files[0]["sha256"] == hashlib.sha256(SAFE_TABLE).hexdigest()
    steward = world.client("steward").get(f"/api/airlock/requests/{req['id']}").json()
    assert [r["job_id"] for r in steward["rounds"]] == [req["job_id"], strong]
    dev = world.client("dev").get(f"/api/airlock/requests/{req['id']}").json()
    assert "files" not in dev["rounds"][0] and dev["rounds"][0]["failed_rules"]


def test_the_audit_log_records_job_ids_and_file_hashes(world: World) -> None:
    req = _returned_open_request(world)
    strong = world.make_job({"t.csv": SAFE_TABLE}, datasets=("residents",))
    world.client("dev").post(f"/api/airlock/requests/{req['id']}/resubmit", json={"job_id": strong})
    with world.lab.tx() as s:
        events = list(
            s.execute(
                select(AuditEvent).where(
                    AuditEvent.target == f"release:{req['id']}",
                    AuditEvent.action.in_(["release.create", "release.submit", "release.resubmit"]),
                )
            ).scalars()
        )
    by = {e.action: json.loads(e.details) for e in events}
    assert by["release.create"]["job_id"] == req["job_id"]
    assert by["release.create"]["files"][0]["sha256"] == hashlib.sha256(LEAKY).hexdigest()
    resub = by["release.resubmit"]
    assert resub["job_id"] == strong and resub["previous_job_id"] == req["job_id"] and resub["round"] == 2
    assert resub["files"][0]["sha256"] == hashlib.sha256(SAFE_TABLE).hexdigest()
    assert resub["grade"] == "general_3" and resub["checkers_needed"] == 2


def test_the_web_form_resubmits_with_a_new_job_and_recomputes(world: World) -> None:
    req = _returned_open_request(world)
    page = world.client("dev").get(f"/airlock/requests/{req['id']}").text
    assert 'id="resubmit-form"' in page
    strong = world.make_job({"t.csv": SAFE_TABLE}, datasets=("residents",))
    foreign = world.make_job({"t.csv": SAFE_TABLE}, project="other", datasets=("open_stats",))
    refused = world.client("dev").post(
        f"/airlock/requests/{req['id']}/resubmit", data={"job_id": str(foreign)}, follow_redirects=False
    )
    assert refused.status_code in (303, 403)
    assert world.client("dev").get(f"/api/airlock/requests/{req['id']}").json()["round"] == 1
    done = world.client("dev").post(
        f"/airlock/requests/{req['id']}/resubmit", data={"job_id": str(strong)}, follow_redirects=False
    )
    assert done.status_code == 303
    after = world.client("dev").get(f"/api/airlock/requests/{req['id']}").json()
    assert after["round"] == 2 and after["job_id"] == strong and after["checkers_needed"] == 2
    assert after["state"] == "under_review"
