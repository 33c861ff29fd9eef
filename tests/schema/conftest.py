"""A real ``countylab serve`` process over a tiny demo lab, on SQLite and on PostgreSQL.

The demo county is generated once per session (SQLite); each test gets its own copy of the data
folder (SQLite) or a fresh PostgreSQL database loaded from the same seed files, and its own server
process on a free 127.0.0.1 port.  The server runs with ``strict_audit`` (a state change without an
audit event is a 500, which the fuzz test's first check catches) and small body limits (so the
413 tests do not push gigabytes).  The test process keeps its own :class:`Lab` on the same
database: it mints bearer tokens and reads the audit head, exactly as another lab process would.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from countylab.bootstrap import setup_demo
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.storage.models import AuditHead, User
from tests.support import build_lab

#: body limits of the served lab, in MiB (the 413 tests send a little more than these)
BODY_MB, UPLOAD_MB, CODE_MB = 1, 2, 1
#: the demo users the fuzz test calls the API as, with the roles they are restored to
CALLERS = {"developer": ["developer"], "admin": ["admin"]}


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny demo county's data folder (SQLite), built once per session and copied per test."""
    root = tmp_path_factory.mktemp("schema-demo")
    lab = build_lab(root)
    setup_demo(lab, size="tiny", steps=False)
    lab.close()
    return root / "lab-data"


@dataclass
class Served:
    """A running ``countylab serve`` and a handle on the same database."""

    url: str
    lab: Lab
    log: Path
    process: subprocess.Popen[bytes]
    tokens: dict[str, str] = field(default_factory=dict)

    def user_id(self, username: str) -> int:
        with self.lab.read() as s:
            return s.execute(select(User.id).where(User.username == username)).scalar_one()

    def fresh_token(self, username: str) -> str:
        """Put the demo user back as it was (active, its own roles) and issue a new token: a
        fuzzed call may have revoked the token, changed the password, roles or activity."""
        uid = self.user_id(username)
        with self.lab.tx() as s:
            ids.set_active(s, SYSTEM, uid, True)
            ids.set_roles(s, SYSTEM, uid, CALLERS[username])
            token = ids.create_token(s, SYSTEM, user_id=uid, name="schema-fuzz", days=1).token
        self.tokens[username] = token
        return token

    def audit_head(self) -> int:
        """The id of the newest audit event (every event advances it; nothing rewrites it)."""
        with self.lab.read() as s:
            return s.execute(select(AuditHead.last_id).where(AuditHead.id == 1)).scalar_one()

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(data_dir: Path, database_url: str, log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = _free_port()
    env = {
        **os.environ,
        "COUNTYLAB_STRICT_AUDIT": "true",
        "COUNTYLAB_BODY_MAX_MB": str(BODY_MB),
        "COUNTYLAB_UPLOAD_MAX_MB": str(UPLOAD_MB),
        "COUNTYLAB_BODY_CODE_MAX_MB": str(CODE_MB),
        "COUNTYLAB_DATABASE_URL": database_url,
    }
    countylab = Path(sys.executable).with_name("countylab")
    cmd = [str(countylab), "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise AssertionError(f"countylab serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return url, process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"countylab serve did not answer within 90 s:\n{log.read_text()}")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def served(tmp_path: Path, db_url: str, demo_data: Path) -> Iterator[Served]:
    """``countylab serve`` on a copy of the demo lab (SQLite) or the demo loaded into PostgreSQL."""
    data_dir = tmp_path / "lab-data"
    if db_url:
        shutil.copytree(demo_data / "seed", data_dir / "seed")
        lab = build_lab(tmp_path, db_url)
        setup_demo(lab, size="tiny", steps=False)
    else:
        shutil.copytree(demo_data, data_dir)
        lab = build_lab(tmp_path)
    log = tmp_path / "serve.log"
    url, process = _start(data_dir, db_url, log)
    server = Served(url, lab, log, process)
    try:
        yield server
    finally:
        _stop(process)
        lab.close()
    assert "Traceback" not in server.log_tail(10_000), server.log_tail()
