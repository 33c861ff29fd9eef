"""Shared fixtures: labs on real SQLite and real PostgreSQL, and a user factory."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from countylab.lab import Lab
from tests.support import build_lab, create_user

pytest_plugins = ["tests.browser"]  # the `browser` and `artifacts` fixtures for UI tests

PG_URL = os.environ.get("COUNTYLAB_TEST_PG_URL", "")
REQUIRE_PG = os.environ.get("COUNTYLAB_TEST_REQUIRE_PG") == "1"


def _missing_capabilities() -> list[str]:
    """What the whole suite needs on this machine; ``make test`` installs all of it."""
    import importlib.util
    import shutil

    from countylab.sandbox import sandbox_available

    missing = []
    if not sandbox_available():
        missing.append("a working bubblewrap sandbox and the countylab-sandbox user")
    if not Path("/usr/bin/chromium").exists():
        missing.append("Chromium at /usr/bin/chromium")
    if shutil.which("tesseract") is None:
        missing.append("Tesseract OCR")
    if importlib.util.find_spec("ray") is None:
        missing.append("Ray (pip extra `dev`)")
    return missing


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under ``make test`` a missing capability fails the run at once, instead of letting the
    tests that need it skip (a skipped sandbox test is a failure, not a pass)."""
    if not REQUIRE_PG:
        return
    missing = _missing_capabilities()
    if missing:
        raise pytest.UsageError(
            "make test needs " + "; ".join(missing) + " — run `bash scripts/system-deps.sh test` as root"
        )


def _pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("COUNTYLAB_TEST_PG_URL is not set although the test script requires PostgreSQL")
        pytest.skip("PostgreSQL not available (run the suite with `make test`)")
    name = "t_" + uuid.uuid4().hex[:12]
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
