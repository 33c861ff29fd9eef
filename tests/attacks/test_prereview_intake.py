"""Intake that cannot be DoS'd: request bodies are limited while they stream, and the automatic
checks run outside the database write transaction, in a worker with time and memory limits.

The reported win: a 65 KB XLSX that unpacks to a million cells held the write lock for up to a
minute while it was parsed inside the submitting transaction; every other user got errors.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from countylab.airlock import checkrun
from countylab.airlock.checkrun import CheckLimits
from countylab.storage.models import AuditEvent
from tests.airlock_e2e import workers
from tests.airlock_e2e.conftest import SAFE_TABLE, World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("intake"))  # default limits: 8 MiB JSON, 24 MiB code
    yield w
    w.lab.close()


@pytest.fixture
def limits(world: World) -> Iterator[None]:
    before = (world.lab.airlock.check_limits, world.lab.airlock.check_runner)
    yield
    world.lab.airlock.check_limits, world.lab.airlock.check_runner = before


def _create(world: World, job: int) -> Any:
    body = {"job_id": job, "title": "t", "files": [{"name": "*"}], "submit": True}
    return world.client("dev").post("/api/airlock/requests", json=body)


# -- huge bodies ---------------------------------------------------------------------------------
def test_an_announced_huge_json_body_is_refused_before_it_is_read(world: World) -> None:
    resp = world.client("dev").post(
        "/api/airlock/requests",
        content=b"{" + b" " * (9 * 2**20) + b"}",
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 413, resp.text
    err = resp.json()["error"]
    assert err["details"]["reason"] == "too_large" and "MiB" in err["message"]
    assert "请求体" in err["message"]  # bilingual


def test_a_chunked_body_is_cut_off_when_it_crosses_the_limit(world: World) -> None:
    """Over real HTTP (uvicorn): a chunked body with no length is refused once 8 MiB are in;
    the server stops reading, so the client cannot push the other 56 MiB."""
    import httpx

    from tests.browser import live_server
    from tests.support import token_for

    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(64):  # 64 MiB if it were all read
            sent.append(i)
            yield b"x" * 2**20

    headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {token_for(world.lab, world.users['dev'])}",
    }
    with live_server(world.lab) as base:
        try:
            resp = httpx.post(f"{base}/api/airlock/requests", content=chunks(), headers=headers, timeout=30)
            status = resp.status_code
        except httpx.HTTPError:  # the server closed the connection while the client still wrote
            status = 413
    assert status == 413
    assert len(sent) < 32, f"the server read {len(sent)} MiB (socket buffers hold a few)"


def test_a_lying_content_length_does_not_help(world: World) -> None:
    """A client announcing 10 bytes and streaming megabytes (httpx would not send it: the ASGI
    level is driven directly)."""
    from countylab.web.bodylimit import BodyLimit

    received: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            received.append(len(msg.get("body", b"")))
            if not msg.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    import asyncio

    limited = BodyLimit(app, default_bytes=2**20, upload_bytes=2**20, code_bytes=2**20)
    messages = [{"type": "http.request", "body": b"z" * 2**19, "more_body": True} for _ in range(20)]
    out: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    scope = {"type": "http", "path": "/api/x", "method": "POST", "headers": [(b"content-length", b"10")]}
    asyncio.run(limited(scope, receive, send))
    assert out[0]["status"] == 413 and len(received) <= 2 and len(messages) >= 17


def test_a_job_archive_over_the_code_limit_is_refused(world: World) -> None:
    resp = world.client("dev").post(
        f"/api/projects/{world.project_id}/jobs", files={"file": ("code.tar.gz", b"\0" * (25 * 2**20))}
    )
    assert resp.status_code == 413 and resp.json()["error"]["details"]["route_class"] == "code"


def test_a_json_body_under_the_limit_still_works(world: World) -> None:
    job = world.make_job({"t.csv": SAFE_TABLE})
    resp = _create(world, job)
    assert resp.status_code == 201 and resp.json()["state"] == "under_review"


# -- checks outside the write transaction --------------------------------------------------------
def _slow(job: Any, limits: CheckLimits) -> list[Any]:  # runs in the server process
    time.sleep(6)
    return checkrun.run_in_worker(job, limits)


def test_slow_checks_do_not_block_other_users(world: World, limits: None) -> None:
    world.lab.airlock.check_runner = _slow
    job = world.make_job({"t.csv": SAFE_TABLE})
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.setdefault("resp", _create(world, job)))
    worker.start()
    time.sleep(0.8)  # the submission is now inside its (slow) checks
    other = world.make_job({"u.csv": SAFE_TABLE}, project="other")
    started = time.monotonic()
    body = {"job_id": other, "title": "t", "files": [{"name": "*"}], "submit": False}
    resp = world.client("dev2").post("/api/airlock/requests", json=body)  # another user writes
    took = time.monotonic() - started
    worker.join(30)
    # blocked, it would wait > 5 s (the rest of the 6 s); a busy CI machine may take a few
    assert resp.status_code == 201 and took < 4.0, f"another user waited {took:.1f}s"
    assert result["resp"].status_code == 201 and result["resp"].json()["state"] == "under_review"


def _audited(world: World, request_id: int) -> dict[str, Any]:
    with world.lab.read() as s:
        details = s.execute(
            select(AuditEvent.details)
            .where(AuditEvent.action == "release.checks", AuditEvent.target == f"release:{request_id}")
            .order_by(AuditEvent.id.desc())
        ).scalar()
    found: dict[str, Any] = json.loads(details or "{}")
    return found


@pytest.mark.parametrize(
    ("execute", "why"),
    [
        (workers.hang, "time"),
        (workers.bomb, "memory"),
        (workers.die, "died"),
        (workers.raise_value_error, "ValueError"),
    ],
)
def test_a_check_worker_that_hangs_explodes_or_dies_returns_the_request(
    world: World, limits: None, execute: Any, why: str
) -> None:
    # what the worker runs instead of the checks (by reference: the fork server imports it)
    world.lab.airlock.check_runner = functools.partial(checkrun.run_in_worker, run=execute)
    world.lab.airlock.check_limits = CheckLimits(time_s=2.0, memory_mb=256)
    job = world.make_job({"t.csv": SAFE_TABLE})
    started = time.monotonic()
    resp = _create(world, job)
    assert time.monotonic() - started < 20
    req = resp.json()
    assert req["state"] == "returned" and req["return_reason"] == "check_failed_to_run", req
    assert req["failed_rules"] == ["check_failed_to_run"], req  # the developer is told which rule
    audited = _audited(world, req["id"])
    assert audited.get("why") == why, audited  # the operator is told why
    if why == "ValueError":  # ... and, for an exception, what it said and where
        assert "could not read" in audited["detail"] and "raise_value_error" in audited["detail"], audited
    # the state machine stays usable: the developer can resubmit once the worker behaves
    world.lab.airlock.check_runner = checkrun.run_in_worker
    world.lab.airlock.check_limits = CheckLimits()
    again = world.client("dev").post(f"/api/airlock/requests/{req['id']}/resubmit", json={}).json()
    assert again["state"] == "under_review" and again["round"] == 2, (again, _audited(world, req["id"]))


def _only_here(job: Any) -> list[Any]:  # pytest's importlib mode: no other process can import it
    return []


def test_a_job_the_worker_cannot_read_is_reported_not_lost(world: World, limits: None) -> None:
    """What the worker cannot unpickle (here: a function of a module it cannot import) is a
    failure with its reason, like any other, not a silent death."""
    world.lab.airlock.check_runner = functools.partial(checkrun.run_in_worker, run=_only_here)
    req = _create(world, world.make_job({"t.csv": SAFE_TABLE})).json()
    assert req["state"] == "returned" and req["failed_rules"] == ["check_failed_to_run"], req
    audited = _audited(world, req["id"])
    assert audited["why"] == "ModuleNotFoundError" and "pickle.loads" in audited["detail"], audited


def test_a_worker_that_dies_once_is_retried_and_its_checks_recorded(
    world: World, limits: None, tmp_path: Path
) -> None:
    """A passing fault (the worker dies once) does not return a good request."""
    marker = tmp_path / "died-once"
    run = functools.partial(workers.die_once, marker)
    world.lab.airlock.check_runner = functools.partial(checkrun.run_in_worker, run=run)
    resp = _create(world, world.make_job({"t.csv": SAFE_TABLE}))
    assert marker.exists() and resp.json()["state"] == "under_review", resp.json()


def test_a_lock_another_server_thread_holds_does_not_hang_the_worker(world: World, limits: None) -> None:
    """The class behind a rare CI failure: a worker forked from the (many-threaded) server
    copies every lock another thread holds at that instant, and hangs or dies on it.  Workers
    come from a single-threaded fork server, so a lock held in the server is free in the worker.
    (Forked from the server, this request is returned with ``check_failed_to_run``/``time``.)"""
    run = workers.takes_the_library_lock
    world.lab.airlock.check_runner = functools.partial(checkrun.run_in_worker, run=run)
    world.lab.airlock.check_limits = CheckLimits(time_s=15.0)
    job = world.make_job({"t.csv": SAFE_TABLE})
    with workers.LIBRARY_LOCK:  # another thread of the server is inside that library right now
        resp = _create(world, job)
    req = resp.json()
    assert req["state"] == "under_review", (req, _audited(world, req["id"]))


def test_a_killed_fork_server_is_started_again(world: World, limits: None) -> None:
    """The fork server itself dies (the kernel's OOM killer, an operator's kill): the next request
    is still checked, by a fork server started again, not returned for a worker that never ran."""
    import signal
    from multiprocessing import forkserver

    assert _create(world, world.make_job({"t.csv": SAFE_TABLE})).json()["state"] == "under_review"
    pid = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    assert pid
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    req = _create(world, world.make_job({"t.csv": SAFE_TABLE})).json()
    assert req["state"] == "under_review", (req, _audited(world, req["id"]))
    assert forkserver._forkserver._forkserver_pid not in (None, pid)  # type: ignore[attr-defined]


def test_a_request_left_submitted_by_a_crash_is_checked_again(world: World) -> None:
    """The server died between the submitting commit and the recorded results."""
    from datetime import timedelta

    from countylab.airlock.service import FileChoice
    from countylab.identity.access import SYSTEM
    from countylab.storage.airlock_models import ReleaseRequest
    from countylab.storage.models import utcnow

    job = world.make_job({"t.csv": SAFE_TABLE})
    with world.lab.tx() as s:
        req = world.lab.airlock.create(s, SYSTEM, job, [FileChoice("analyse/t.csv")])
        world.lab.airlock.submit(s, SYSTEM, req.id)  # committed; the checks never ran
        rid = req.id
    with world.lab.tx() as s:
        row = s.get(ReleaseRequest, rid)
        assert row is not None and row.state == "submitted"
        row.submitted_at = utcnow() - timedelta(hours=1)
    assert rid in world.lab.airlock.recheck_stale(world.lab.tx)
    with world.lab.tx() as s:
        assert s.get(ReleaseRequest, rid).state == "under_review"  # type: ignore[union-attr]


def test_copying_a_large_outbox_does_not_hold_the_write_lock(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files are copied and hashed before the write transaction (a slow disk, or 50 files of
    256 MB, must not make other users wait)."""
    from countylab.airlock import staging

    original = staging.copy_into_store

    def slow_copy(source: Any, dest: Any, *a: Any) -> Any:
        time.sleep(6)
        return original(source, dest, *a)

    monkeypatch.setattr(staging, "copy_into_store", slow_copy)
    job = world.make_job({"t.csv": SAFE_TABLE})
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.setdefault("resp", _create(world, job)))
    worker.start()
    time.sleep(0.8)  # the request is now copying its files
    other = world.make_job({"u.csv": SAFE_TABLE}, project="other")
    started = time.monotonic()
    body = {"job_id": other, "title": "t", "files": [{"name": "*"}], "submit": False}
    monkeypatch.setattr(staging, "copy_into_store", original)
    resp = world.client("dev2").post("/api/airlock/requests", json=body)
    took = time.monotonic() - started
    worker.join(30)
    # blocked, it would wait > 5 s (the rest of the 6 s); a busy CI machine may take a few
    assert resp.status_code == 201 and took < 4.0, f"another user waited {took:.1f}s"
    assert result["resp"].status_code == 201
