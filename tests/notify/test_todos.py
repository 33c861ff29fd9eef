"""To-do lists per role, computed from the live state, and the notifications emitted at the
capabilities' own points (release submitted/returned/released, job finished, top-up, model,
connector failure, grade to confirm), through the real airlock API and services."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from countylab.catalog import service as catalog
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM, Principal
from countylab.jobs import queue
from countylab.jobs.states import JobState
from countylab.notify import inbox
from countylab.notify.todos import todos
from countylab.privacy import topups
from countylab.storage.airlock_models import RegisteredModel
from countylab.storage.catalog_models import Connector, SyncRun
from countylab.storage.jobs_models import Job
from countylab.storage.models import Dataset, utcnow
from tests.airlock_e2e.conftest import SAFE_TABLE, World, build_world, request_body, residents_csv
from tests.support import create_user, finished_job


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("todos"))
    w.users["provider"] = create_user(w.lab, "provider", ["provider"], org="县民政局")
    yield w
    w.lab.close()


def principal(w: World, who: str) -> Principal:
    with w.lab.read() as s:
        return ids.principal_for(s, ids.get_user(s, w.users[who]), "session")


def kinds(w: World, who: str) -> list[tuple[str, str]]:
    with w.lab.read() as s:
        found = todos(s, principal(w, who), uploads_dir=w.lab.ingestion.uploads_dir)
    return [(t.kind, t.link) for t in found]


def unread(w: World, who: str) -> list[tuple[str, str]]:
    with w.lab.read() as s:
        return [(n.kind, n.target) for n in inbox.items(s, w.users[who], unread_only=True)]


def test_checker_and_developer_follow_a_release_request(world: World) -> None:
    w = world
    job = w.make_job({"by_village.csv": SAFE_TABLE})
    rid = w.client("dev").post("/api/airlock/requests", json=request_body(job, "by_village.csv")).json()["id"]
    link = f"/airlock/requests/{rid}"
    # every independent checker has it to do, and a notification; the developer has neither
    for who in ("checker", "checker2", "checker3"):
        assert ("todo.review_release", link) in kinds(w, who)
        assert ("release.submitted", f"release:{rid}") in unread(w, who)
    assert ("release.submitted", f"release:{rid}") not in unread(w, "dev")
    # a checker who voted has nothing left to do on it; the others still do
    assert (
        w.client("checker").post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"}).status_code
        == 200
    )
    assert ("todo.review_release", link) not in kinds(w, "checker")
    assert ("todo.review_release", link) in kinds(w, "checker2")
    # returned by the second checker: gone from every checker's list, on the developer's
    resp = w.client("checker2").post(
        f"/api/airlock/requests/{rid}/votes", json={"choice": "return", "comment": "请合并小村"}
    )
    assert resp.status_code == 200 and resp.json()["state"] == "returned", resp.text
    for who in ("checker", "checker2", "checker3"):
        assert ("todo.review_release", link) not in kinds(w, who)
        assert ("release.submitted", f"release:{rid}") not in unread(w, who)  # settled: nothing to review
    assert ("todo.release_returned", link) in kinds(w, "dev")
    assert ("release.returned", f"release:{rid}") in unread(w, "dev")


def test_release_approved_reaches_the_developer_until_read(world: World) -> None:
    w = world
    job = w.make_job({"by_village.csv": SAFE_TABLE})
    rid = w.client("dev").post("/api/airlock/requests", json=request_body(job, "by_village.csv")).json()["id"]
    for who in ("checker", "checker2"):
        assert (
            w.client(who).post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"}).status_code
            == 200
        )
    link = f"/airlock/requests/{rid}"
    assert ("todo.release_released", link) in kinds(w, "dev")
    [nid] = [
        n.id for n in inbox_items(w, "dev") if n.target == f"release:{rid}" and n.kind == "release.released"
    ]
    with w.lab.tx() as s:
        inbox.mark_read(s, principal(w, "dev"), nid)
    assert ("todo.release_released", link) not in kinds(w, "dev")


def inbox_items(w: World, who: str) -> list[inbox.Item]:
    with w.lab.read() as s:
        return inbox.items(s, w.users[who], limit=200)


def test_developer_sees_finished_jobs_since_last_seen(world: World) -> None:
    w = world
    with w.lab.tx() as s:
        job_id = finished_job(
            s,
            w.lab,
            project_id=w.project_id,
            submitted_by=w.users["dev"],
            datasets=["residents"],
            state="running",
        )
        job = s.get(Job, job_id)
        assert job is not None
        queue.move(s, job, JobState.succeeded, actor="system", action="job.finished")
    assert ("todo.job_succeeded", f"/jobs/{job_id}") in kinds(w, "dev")
    [n] = [n for n in inbox_items(w, "dev") if n.target == f"job:{job_id}"]
    assert n.kind == "job.succeeded" and n.link == f"/jobs/{job_id}"
    with w.lab.tx() as s:
        inbox.mark_read(s, principal(w, "dev"), n.id)
    assert ("todo.job_succeeded", f"/jobs/{job_id}") not in kinds(w, "dev")


def test_steward_grades_models_and_topups(world: World) -> None:
    w = world
    with w.lab.tx() as s:
        ds = s.get(Dataset, w.dataset_id)
        assert ds is not None
        ds.grade_confirmed, ds.proposed_grade = False, "general_2"  # new data suggests a higher grade
        catalog.apply_proposal(s, ds, catalog.Grade("general_4"), "新数据含身份证号")
    assert ("todo.confirm_grade", f"/datasets/{w.dataset_id}") in kinds(w, "steward")
    assert ("grade.to_confirm", f"dataset:{w.dataset_id}") in unread(w, "steward")
    with w.lab.tx() as s:  # the same suggestion again: no second notification
        ds = s.get(Dataset, w.dataset_id)
        assert ds is not None
        catalog.apply_proposal(s, ds, catalog.Grade("general_4"), "新数据含身份证号")
    assert unread(w, "steward").count(("grade.to_confirm", f"dataset:{w.dataset_id}")) == 1
    with w.lab.tx() as s:
        catalog.set_grade(s, principal(w, "steward"), w.dataset_id, "general_4")
    assert ("todo.confirm_grade", f"/datasets/{w.dataset_id}") not in kinds(w, "steward")
    assert ("grade.to_confirm", f"dataset:{w.dataset_id}") not in unread(w, "steward")

    with w.lab.tx() as s:
        row = topups.request_topup(
            s, principal(w, "dev"), w.project_id, w.dataset_id, epsilon=0.5, reason="二期调研"
        )
    assert ("todo.decide_topup", f"/query?project_id={w.project_id}") in kinds(w, "steward")
    assert ("budget.topup_requested", f"topup:{row['id']}") in unread(w, "steward")
    with w.lab.tx() as s:
        topups.decide_topup(s, principal(w, "steward"), row["id"], approve=True)
    assert ("todo.decide_topup", f"/query?project_id={w.project_id}") not in kinds(w, "steward")
    assert ("budget.topup_requested", f"topup:{row['id']}") not in unread(w, "steward")
    assert ("budget.topup_approved", f"topup:{row['id']}") in unread(w, "dev")

    job = w.make_job({"model.json": b"{}"})
    with w.lab.tx() as s:
        m = RegisteredModel(
            project_id=w.project_id,
            job_id=job,
            name="养老风险模型",
            file_name="m.onnx",
            format="onnx",
            stored_path="/nonexistent",
            sha256="0" * 64,
            card={},
            state="pending",
            created_by=w.users["dev"],
        )
        s.add(m)
        s.flush()
        model_id = m.id
    assert ("todo.approve_model", f"/models/{model_id}") in kinds(w, "steward")
    with w.lab.tx() as s:
        m2 = s.get(RegisteredModel, model_id)
        assert m2 is not None
        m2.state = "approved"
    assert ("todo.approve_model", f"/models/{model_id}") not in kinds(w, "steward")


def test_provider_connector_failures_and_unconfirmed_uploads(world: World, tmp_path: Path) -> None:
    w = world
    with w.lab.tx() as s:
        c = Connector(
            dataset_id=w.dataset_id,
            kind="postgresql",
            dsn="postgresql://x@127.0.0.1:1/x",
            source_table="public.people",
            cursor_column="id",
            key_columns=[],
            interval_s=300,
            enabled=True,
        )
        s.add(c)
        s.flush()
        cid = c.id
    from countylab.connectors import service as connectors

    # a real sync against a closed port fails, is recorded, and tells the department's provider
    run = connectors.run_sync(w.lab, SYSTEM, cid, trigger="manual")
    assert run.status == "failed"
    assert ("todo.connector_failed", f"/datasets/{w.dataset_id}/connectors") in kinds(w, "provider")
    assert ("connector.failed", f"connector:{cid}") in unread(w, "provider")
    connectors.run_sync(w.lab, SYSTEM, cid, trigger="manual")  # still failing: no second notice
    assert unread(w, "provider").count(("connector.failed", f"connector:{cid}")) == 1
    with w.lab.tx() as s:  # a later successful run clears the to-do
        s.add(SyncRun(connector_id=cid, status="succeeded", rows=0, finished_at=utcnow()))
    assert ("todo.connector_failed", f"/datasets/{w.dataset_id}/connectors") not in kinds(w, "provider")
    # an upload staged (header shown) but never confirmed waits on the uploader's list
    staged = w.lab.ingestion.stage_upload(
        principal(w, "provider"), w.dataset_id, "花名册.csv", io.BytesIO(residents_csv())
    )
    assert ("todo.confirm_upload", f"/datasets/{w.dataset_id}") in kinds(w, "provider")
    assert ("todo.confirm_upload", f"/datasets/{w.dataset_id}") not in kinds(w, "steward")
    assert staged.id


def test_ages_and_order(world: World) -> None:
    with world.lab.read() as s:
        found = todos(s, principal(world, "dev"), uploads_dir=None)
    items = [t.to_json("zh-CN") for t in found]
    assert items and all(i["age"] and i["link"].startswith("/") for i in items)
    assert [i["since"] for i in items] == sorted(i["since"] for i in items)  # oldest first
