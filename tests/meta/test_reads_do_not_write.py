"""Meta-test: a GET takes no write lock, so page views never queue behind writers.

It walks every GET route of the app, calls each one as several users of the meta-test's World
(plus an under-review and a released airlock request), and watches the metadata engine:

  1. every transaction a GET opens is a read-only unit of work (``lab.read()``: plain ``BEGIN``
     on SQLite), except the short audit-only transactions after the read (a denial's
     ``permission.denied`` event, and the audited views listed in ``AUDITED_READS``);
  2. no read-only unit of work executes an INSERT, UPDATE or DELETE;
  3. the proof: while another connection holds SQLite's write lock (``BEGIN IMMEDIATE`` on the
     same file), every GET that answered above answers again, the same way, without waiting
     (the lab's busy timeout is cut to 200 ms, so one that wants the lock fails loudly).

Reintroducing ``lab.tx()`` in a GET breaks 1 and 3; writing in ``lab.read()`` breaks 2.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text

from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.storage.airlock_models import ReleaseFile
from countylab.storage.db import READ_ONLY_OPTION, make_engine
from countylab.web.app import create_app, iter_api_routes
from tests.meta.examples_airlock import _request
from tests.meta.test_every_route_checks_and_audits import World
from tests.support import browser_login

# GETs whose answer is itself an audited event (who looked at what): the event is written in a
# short transaction of its own after the read, touching only the audit tables.
AUDITED_READS = {
    "/api/airlock/requests/{request_id}": "release.view",
    "/airlock/requests/{request_id}": "release.view",
    "/api/airlock/files/{file_id}/preview": "release.preview",
    "/api/airlock/files/{file_id}/preview/pages": "release.preview",
    "/airlock/files/{file_id}/preview": "release.preview",
    "/airlock/files/{file_id}/view": "release.preview",
    "/api/airlock/files/{file_id}/download": "release.download",
    "/airlock/files/{file_id}/download": "release.download",
    "/audit/export.csv": "audit.export",
    "/audit/export.xlsx": "audit.export",
    "/api/audit/export": "audit.export",
    "/api/applications/{application_id}/attachments/{attachment_id}": "application.attachment.download",
    "/applications/{application_id}/attachments/{attachment_id}": "application.attachment.download",
    "/api/ops/export": "ops.export",
    "/ops/export.xlsx": "ops.export",
}
# Routes that answer without touching the database at all.
NO_DATABASE = {"/healthz", "/lang/{code}", "/datasets/{dataset_id}/dummy.csv", "/login"}
USERS = ("dev", "checker", "steward", "admin", "provider")
AUDIT_TABLES = {"audit_events", "audit_head"}
WRITE = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+\"?(\w+)", re.I)


@dataclass
class Tx:
    read_only: bool
    writes: set[str] = field(default_factory=set)


class Recorder:
    """Every transaction the lab's engine begins, and the tables it writes."""

    def __init__(self, engine: Engine) -> None:
        self.txs: list[Tx] = []
        self._open: dict[int, Tx] = {}
        self._lock = threading.Lock()
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "before_cursor_execute", self._execute)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)

    def _begin(self, conn: Any) -> None:
        tx = Tx(read_only=bool(conn.get_execution_options().get(READ_ONLY_OPTION)))
        with self._lock:
            self._open[id(conn.connection.dbapi_connection)] = tx
            self.txs.append(tx)

    def _execute(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        m = WRITE.match(statement)
        if m:
            with self._lock:
                tx = self._open.get(id(conn.connection.dbapi_connection))
            if tx is not None:
                tx.writes.add(m.group(2).lower())

    def _end(self, conn: Any) -> None:
        with self._lock:
            self._open.pop(id(conn.connection.dbapi_connection), None)

    def take(self) -> list[Tx]:
        with self._lock:
            taken, self.txs = self.txs, []
        return taken


def get_routes(lab: Lab) -> list[str]:
    return sorted({r.path for r in iter_api_routes(create_app(lab)) if "GET" in r.methods})


@dataclass
class Setup:
    lab: Lab
    recorder: Recorder
    db_file: Path
    values: dict[str, str]
    clients: dict[str, TestClient]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    home = tmp_path_factory.mktemp("reads-world")
    world = World(home)
    reviewed = _request(world, submit=True)  # under review: checkers preview its files
    released = _request(world, submit=True)
    lab = world.lab
    _release(world, int(released))
    with lab.read() as s:
        review_file = s.query(ReleaseFile).filter_by(request_id=int(reviewed)).first()
        released_file = s.query(ReleaseFile).filter_by(request_id=int(released)).first()
        assert review_file is not None and released_file is not None
        files = {"review": str(review_file.id), "released": str(released_file.id)}
    with lab.tx() as s:  # the released result shown in the public gallery
        from countylab.showcase import gallery

        gallery.add_item(s, SYSTEM, released_file.id, title="出域成果")
    settings = lab.settings
    lab.close()
    engine = make_engine(settings.resolved_database_url)

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_conn: Any, _record: Any) -> None:  # after the lab's own tuning
        dbapi_conn.execute("PRAGMA busy_timeout=200")

    lab = Lab(settings, engine=engine)
    app = create_app(lab)
    clients = {}
    for name in USERS:
        client = TestClient(app, raise_server_exceptions=False)
        browser_login(client, name)
        clients[name] = client
    values = {
        "project_id": str(world.project_id),
        "dataset_id": str(world.dataset_id),
        "connector_id": str(world.connector_id),
        "job_id": world.values["job_id"],
        "request_id": reviewed,
        "released_request_id": released,
        "model_id": world.values["served_model_id"],
        "query_id": world.values["query_id"],  # tests/meta/examples_answers.py
        "fmt": world.values["fmt"],
        "code": "en",
        "capability": "home",
        "upload_id": world.staged_for("provider"),  # the upload confirm page read again
    }
    values.update({f"file:{k}": v for k, v in files.items()})
    values.update({k: v for k, v in world.values.items() if k not in values})  # areas' setup()
    try:
        yield Setup(lab, Recorder(engine), Path(str(engine.url.database)), values, clients)
    finally:
        lab.close()


def _release(world: World, request_id: int) -> None:
    """Approve by as many independent checkers as the grade needs."""
    from countylab.identity import service as ids

    lab = world.lab
    n = 0
    while True:
        with lab.tx() as s:
            n += 1
            user = ids.create_user(
                s, SYSTEM, username=f"releaser{n}", password="x" * 12, display_name="r", roles=["checker"]
            )
            principal = ids.principal_for(s, user, "system")
            req = lab.airlock.vote(s, principal, request_id, "approve")
            if req.state == "released" or n > 3:
                break
    assert req.state == "released"


#: pages of released results only (the gallery, the leader's showcase): the released request
RELEASED_ONLY = ("/public/gallery/", "/public/api/gallery/", "/showcase/releases/")


def _url(path: str, values: dict[str, str]) -> str:
    file_id = values["file:released" if path.endswith("/download") else "file:review"]
    if path.startswith(RELEASED_ONLY):
        values = {**values, "request_id": values["released_request_id"]}
    return re.sub(r"\{(\w+)\}", lambda m: file_id if m.group(1) == "file_id" else values[m.group(1)], path)


def _answered(resp: Any) -> bool:
    return resp.status_code < 400 and resp.headers.get("X-Countylab-Outcome") != "refused"


def check_gets(
    setup: Setup, clients: dict[str, TestClient], routes: list[str]
) -> tuple[list[str], dict[str, tuple[str, int]]]:
    """Rules 1 and 2 for every route and user: the problems found, and who got an answer."""
    answered: dict[str, tuple[str, int]] = {}
    problems: list[str] = []
    for path in routes:
        url = _url(path, setup.values)
        for user, client in clients.items():
            setup.recorder.take()
            resp = client.get(url, follow_redirects=False)
            txs = setup.recorder.take()
            if resp.status_code >= 500:
                problems.append(f"GET {path} as {user}: {resp.status_code} {resp.text[:200]}")
            for tx in txs:
                if tx.read_only and tx.writes:
                    problems.append(f"GET {path} as {user} wrote {sorted(tx.writes)} in lab.read()")
                if not tx.read_only:
                    if tx.writes - AUDIT_TABLES:
                        problems.append(f"GET {path} as {user} wrote {sorted(tx.writes)} in lab.tx()")
                    elif _answered(resp) and path not in AUDITED_READS:
                        problems.append(f"GET {path} as {user} opened lab.tx() (a write lock)")
                    elif not tx.writes:
                        problems.append(f"GET {path} as {user} opened lab.tx() and wrote nothing")
            if _answered(resp) and path not in answered:
                answered[path] = (user, resp.status_code)
    return problems, answered


def check_under_lock(
    setup: Setup, clients: dict[str, TestClient], answered: dict[str, tuple[str, int]]
) -> list[str]:
    """Rule 3: the same GETs, the same answers, while another connection holds the write lock."""
    problems: list[str] = []
    holder = sqlite3.connect(setup.db_file, isolation_level=None, timeout=5)
    holder.execute("BEGIN IMMEDIATE")
    try:
        for path, (user, status) in answered.items():
            if path in AUDITED_READS:
                continue
            started = time.monotonic()
            resp = clients[user].get(_url(path, setup.values), follow_redirects=False)
            took = time.monotonic() - started
            if resp.status_code != status or took > 5:
                problems.append(
                    f"GET {path} as {user} under a held write lock: {resp.status_code} in {took:.2f}s "
                    f"(was {status}) {resp.text[:200]}"
                )
    finally:
        holder.rollback()
        holder.close()
    return problems


def test_every_get_route_reads_without_a_write_lock(setup: Setup) -> None:
    routes = get_routes(setup.lab)
    assert len(routes) >= 60
    problems, answered = check_gets(setup, setup.clients, routes)
    assert not problems, "\n".join(problems)
    unanswered = sorted(set(routes) - set(answered))
    assert not unanswered, f"no World user got an answer from: {unanswered}"
    assert not set(AUDITED_READS) - set(routes), "AUDITED_READS names a route that is gone"
    problems = check_under_lock(setup, setup.clients, answered)
    assert not problems, "\n".join(problems)
    assert len(answered) - len(AUDITED_READS) >= 50


def test_a_get_that_opens_a_write_transaction_is_caught(setup: Setup) -> None:
    """The checks can fail: a GET that reads in ``lab.tx()`` breaks rules 1 and 3, one that
    writes in ``lab.read()`` breaks rule 2."""
    app = create_app(setup.lab)

    @app.get("/meta/reads-in-tx")
    def reads_in_tx() -> dict[str, int]:
        with setup.lab.tx() as s:
            return {"users": len(s.execute(text("SELECT id FROM users")).all())}

    @app.get("/meta/writes-in-read")
    def writes_in_read() -> dict[str, int]:
        with setup.lab.read() as s:
            s.execute(text("UPDATE users SET display_name = display_name WHERE id = -1"))
        return {"users": 0}

    client = TestClient(app, raise_server_exceptions=False)
    clients = {"dev": client}
    problems, answered = check_gets(setup, clients, ["/meta/reads-in-tx", "/meta/writes-in-read"])
    assert problems == [
        "GET /meta/reads-in-tx as dev opened lab.tx() (a write lock)",
        "GET /meta/writes-in-read as dev wrote ['users'] in lab.read()",
    ]
    assert set(answered) == {"/meta/reads-in-tx", "/meta/writes-in-read"}
    locked = check_under_lock(setup, clients, {"/meta/reads-in-tx": answered["/meta/reads-in-tx"]})
    assert len(locked) == 1 and "under a held write lock: 500" in locked[0], locked
