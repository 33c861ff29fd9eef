"""Fixtures for the pull-connector tests: a lab on SQLite, users, a dataset, a real source database.

The source is a fresh PostgreSQL database on the server that ``scripts/test.sh`` starts; tests
that need it skip without ``COUNTYLAB_TEST_PG_URL`` (and fail if ``COUNTYLAB_TEST_REQUIRE_PG=1``,
through ``tests.conftest._pg_database``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI

from countylab.catalog import service as catalog
from countylab.identity import service as ids
from countylab.identity.access import Principal
from countylab.lab import Lab
from countylab.web.app import create_app
from tests.conftest import _pg_database
from tests.support import build_lab, create_user

SECRET = "S3cr3t-Pw-7QxZ"  # the source password: must never show up outside the connectors table
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


@dataclass
class World:
    lab: Lab
    users: dict[str, int]
    dataset_id: int

    def principal(self, name: str) -> Principal:
        with self.lab.tx() as s:
            return ids.principal_for(s, ids.get_user(s, self.users[name]), "token")


def make_world(lab: Lab) -> World:
    users = {
        "provider": create_user(lab, "provider", ["provider"], org="县民政局"),
        "provider2": create_user(lab, "provider2", ["provider"], org="县卫健委"),
        "admin": create_user(lab, "admin", ["admin"], org="县大数据中心", kind="platform"),
        "dev": create_user(lab, "dev", ["developer"], org="县民政局"),
    }
    world = World(lab, users, 0)
    with lab.tx() as s:
        ds = catalog.create_dataset(
            s, world.principal("provider"), name="residents", title="居民名册", privacy_unit="none"
        )
        world.dataset_id = ds.id
    return world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    lab = build_lab(tmp_path)
    yield make_world(lab)
    lab.close()


def app_for(lab: Lab) -> FastAPI:
    """The lab's app with the connector routers (added here until web/app.py includes them)."""
    from countylab.web.api import connectors as api_connectors
    from countylab.web.ui import connector_pages

    app = create_app(lab)
    paths = {getattr(r, "path", "") for r in app.routes}
    if "/api/connectors/{connector_id}/run" not in paths:
        app.include_router(api_connectors.router)
        app.include_router(connector_pages.router)
    return app


@pytest.fixture
def source_url() -> Iterator[str]:
    """A fresh PostgreSQL database holding the department's table; the URL carries no password."""
    yield from _pg_database()


@pytest.fixture
def source(source_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("""CREATE TABLE public.people (
            id integer PRIMARY KEY, name text NOT NULL, score numeric(8, 2), born date,
            updated_at timestamptz NOT NULL)""")
        conn.execute(
            """INSERT INTO public.people VALUES
            (1, '张三', 81.5, '1950-01-02', %s), (2, '李四', 77.25, '1948-07-30', %s),
            (3, '王五', NULL, NULL, %s)""",
            (T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)),
        )
        yield conn


def with_password(url: str, password: str = SECRET) -> str:
    """``postgresql://user@host`` → ``postgresql://user:password@host`` (the trust cluster ignores it)."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


@pytest.fixture(scope="session")
def password_pg() -> Iterator[tuple[str, str]]:
    """A private PostgreSQL cluster that checks passwords (the suite's shared one trusts everyone)."""
    import glob
    import os
    import shutil
    import socket
    import subprocess
    import tempfile

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins or not os.environ.get("COUNTYLAB_TEST_PG_URL"):
        yield from _pg_database()  # skips, or fails under COUNTYLAB_TEST_REQUIRE_PG=1
        return
    pgbin, password = Path(bins[-1]), "right-horse-battery"
    folder = Path(tempfile.mkdtemp(prefix="countylab-pwpg-"))  # pytest's tmp is closed to user postgres
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    (folder / "pw").write_text(password)
    os.chmod(folder / "pw", 0o644)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = folder / "data"
    subprocess.run(
        [
            *as_user,
            str(pgbin / "initdb"),
            "-N",
            "-D",
            str(data),
            "-U",
            "owner",
            "--auth=scram-sha-256",
            f"--pwfile={folder / 'pw'}",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            str(pgbin / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-w",
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        url = f"postgresql://owner@127.0.0.1:{port}/postgres"
        with psycopg.connect(with_password(url, password), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int, v text)")
            conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        yield url, password
    finally:
        subprocess.run(
            [*as_user, str(pgbin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)
