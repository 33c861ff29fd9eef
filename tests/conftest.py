"""Shared fixtures: labs on real SQLite and real PostgreSQL, and a user factory."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from countylab.identity.secrets import INSECURE_TEST_HASHING_ENV
from countylab.lab import Lab
from tests.support import build_lab, create_user

# tests.capabilities: the `needs` marker, the required-capability guard and strict mode (no skips
# under `make test`); tests.browser: the `browser` and `artifacts` fixtures for UI tests;
# tests.parallel: scheduling and per-process state when scripts/test.sh runs the suite on several
# workers (pytest-xdist).  None is imported above: a plugin module imported before it is registered
# escapes assertion rewriting.
pytest_plugins = ["tests.capabilities", "tests.browser", "tests.parallel"]

PG_URL = os.environ.get("COUNTYLAB_TEST_PG_URL", "")

# Thousands of logins at argon2's vetted cost are minutes of CI: new hashes in tests use the
# library's test profile (countylab.identity.secrets).  Tests about hashing cost and login timing
# take it away with the `vetted_hashing` fixture.  Servers and CLIs started by tests inherit it.
os.environ.setdefault(INSECURE_TEST_HASHING_ENV, "1")


@pytest.fixture
def vetted_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords hashed at the production cost, as a county's lab would."""
    monkeypatch.delenv(INSECURE_TEST_HASHING_ENV, raising=False)


def _pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards (named after the xdist worker,
    so a database left behind by a crashed worker says whose it was)."""
    from tests.capabilities import need
    from tests.parallel import worker_id

    need("postgresql")  # skips with plain pytest, fails under scripts/test.sh
    name = f"t_{worker_id()}_{uuid.uuid4().hex[:12]}"
    url = PG_URL.replace("postgresql://", "postgresql+psycopg://")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield ""
    else:
        yield from _pg_database()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A migrated lab on SQLite (most tests)."""
    lab = build_lab(tmp_path)
    yield lab
    lab.close()


@pytest.fixture
def any_lab(tmp_path: Path, db_url: str) -> Iterator[Lab]:
    """A migrated lab on SQLite and, in a second run, on PostgreSQL (metadata tests)."""
    lab = build_lab(tmp_path, db_url)
    yield lab
    lab.close()


@pytest.fixture
def make_user() -> Callable[..., int]:
    return create_user
