"""Several servers on one PostgreSQL database, as real processes on 127.0.0.1.

Exactly one server leads (runs the job dispatcher and the other singletons); ``kill -9`` of the
leader hands leadership to the other within seconds; the job that was running on the killed
server is recovered once and finishes on the new leader; a job running on a live process is
not touched until that process stops.  ``serve --workers 2`` (SQLite) answers from both workers.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from countylab.identity.projects import create_project
from countylab.jobs.queue import claim_next
from countylab.jobs.validate import Quota
from countylab.lab import Lab
from countylab.storage.jobs_models import Job, JobAttempt
from countylab.storage.leader import ServerRegistry
from countylab.storage.models import AuditEvent
from countylab.storage.server_models import LabServer
from tests.capabilities import need
from tests.conftest import _pg_database
from tests.jobs_e2e.e2e_helpers import job_folder, principal
from tests.multi.procs import Server
from tests.support import build_lab, create_user, token_for


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


def wait_for(cond: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached in {timeout} s"
        time.sleep(0.1)


def servers(lab: Lab) -> list[LabServer]:
    with lab.read() as s:
        return list(s.execute(select(LabServer).where(LabServer.stopped_at.is_(None))).scalars())


def row_of(lab: Lab, pid: int) -> LabServer | None:
    return next((r for r in servers(lab) if r.pid == pid), None)


def leaders(lab: Lab) -> list[str]:
    return [r.id for r in servers(lab) if r.leading_since is not None]


def attempts(lab: Lab, job_id: int) -> list[tuple[int, str, str]]:
    with lab.read() as s:
        q = select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.number)
        return [(a.number, a.state, a.worker_id) for a in s.execute(q).scalars()]


def events(lab: Lab, job_id: int) -> list[str]:
    with lab.read() as s:
        q = select(AuditEvent.action).where(AuditEvent.target == f"job:{job_id}").order_by(AuditEvent.id)
        return list(s.execute(q).scalars())


def job(lab: Lab, job_id: int) -> Job:
    with lab.read() as s:
        found = s.get(Job, job_id)
        assert found is not None
        return found


def test_one_leader_kill_9_takeover_and_recovery_once(tmp_path: Path, pg_url: str) -> None:
    need("sandbox")
    lab = build_lab(tmp_path, pg_url)
    create_user(lab, "dev", ["developer"])
    who = principal(lab, "dev")
    with lab.tx() as s:
        pid = create_project(s, who, slug="multi", title="multi").id
    who = principal(lab, "dev")
    slow = job_folder(tmp_path / "code", "slow", "import time\ntime.sleep(6)\n")
    other = job_folder(tmp_path / "code", "other", "print('other')\n")

    # a live process that is not a web server (this test) holds a running job: nobody may touch it
    mine = ServerRegistry(lab.sessions, beat_s=0.5)
    mine.start()
    with lab.tx() as s:
        j2 = lab.jobs.service.submit(s, who, pid, other).id
    with lab.tx() as s:
        claim = claim_next(
            s,
            worker_id=mine.server_id,
            outbox_root=lab.jobs.outbox_root,
            default_quota=Quota(),
            resolve_datasets=lambda _s, _j: {},
        )
        assert claim is not None and claim.job.id == j2

    a = Server(lab.settings.data_dir, pg_url).start()
    b = Server(lab.settings.data_dir, pg_url).start()
    try:
        assert a.proc is not None and b.proc is not None
        row_a = wait_for(lambda: row_of(lab, a.proc.pid), what="server A registered")  # type: ignore[union-attr]
        row_b = wait_for(lambda: row_of(lab, b.proc.pid), what="server B registered")  # type: ignore[union-attr]
        assert isinstance(row_a, LabServer) and isinstance(row_b, LabServer)
        # exactly one leader, and it is A (it started first and keeps its lock)
        wait_for(lambda: leaders(lab) == [row_a.id], what="A leads")
        time.sleep(2.5)  # B campaigns every second meanwhile, and loses every time
        assert leaders(lab) == [row_a.id]

        with lab.tx() as s:
            j1 = lab.jobs.service.submit(s, who, pid, slow).id
        wait_for(lambda: job(lab, j1).state == "running", what="J1 running")
        assert job(lab, j1).worker_id == row_a.id  # only the leader's dispatcher claims

        a.kill()
        killed = time.monotonic()
        wait_for(lambda: leaders(lab) == [row_b.id], timeout=30, what="B takes over")
        takeover_s = time.monotonic() - killed
        assert takeover_s < 10, takeover_s

        wait_for(lambda: job(lab, j1).state == "succeeded", timeout=90, what="J1 recovered and finished")
        assert attempts(lab, j1) == [(1, "lost", row_a.id), (2, "succeeded", row_b.id)]
        assert events(lab, j1).count("job.lost") == 1 and events(lab, j1).count("job.start") == 2

        # the job of the live process was not touched: same attempt, still running, no event
        assert job(lab, j2).state == "running" and job(lab, j2).worker_id == mine.server_id
        assert attempts(lab, j2) == [(1, "running", mine.server_id)]
        assert "job.lost" not in events(lab, j2)

        mine.stop()  # a clean stop: the leader recovers its job at its next check, once
        wait_for(lambda: job(lab, j2).state == "succeeded", timeout=60, what="J2 recovered after its stop")
        assert [(n, st) for n, st, _ in attempts(lab, j2)] == [(1, "lost"), (2, "succeeded")]
        assert events(lab, j2).count("job.lost") == 1
    finally:
        mine.stop()
        a.kill()
        b.stop()
        lab.close()


def test_serve_workers_2_on_sqlite_both_answer(tmp_path: Path) -> None:
    lab = build_lab(tmp_path)
    uid = create_user(lab, "ana", ["developer"])
    token = token_for(lab, uid)
    server = Server(lab.settings.data_dir, "", workers=2).start()

    def whoami() -> str:
        req = urllib.request.Request(server.url + "/api/whoami", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 - local test server
            return str(r.read().decode())

    try:
        rows = wait_for(lambda: len(servers(lab)) == 2 and servers(lab), what="two workers registered")
        assert isinstance(rows, list)
        pids = sorted(r.pid for r in rows)
        assert len(set(pids)) == 2 and server.proc is not None and server.proc.pid not in pids
        wait_for(lambda: len(leaders(lab)) == 1, what="one worker leads")
        assert len(leaders(lab)) == 1
        # freeze one worker at a time: every request is then answered by the other one
        for frozen, live in (pids, pids[::-1]):
            os.kill(frozen, signal.SIGSTOP)
            try:
                for _ in range(5):
                    assert "ana" in whoami()
            finally:
                os.kill(frozen, signal.SIGCONT)
            assert row_of(lab, live) is not None
        time.sleep(1)
        assert len(leaders(lab)) == 1  # still exactly one leader
    finally:
        server.stop()
        lab.close()
