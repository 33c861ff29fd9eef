"""The metadata database: engine and session factory for SQLite or PostgreSQL.

SQLite (embedded tier) runs in WAL mode and every transaction starts with ``BEGIN IMMEDIATE``:
writers are serialised up front, so read-then-write sequences (the audit chain head, budget
ledgers, idempotency keys) cannot interleave.  PostgreSQL uses row locks for the same places.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1] if "///" in url else ""
        pool: dict[str, Any] = {}
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # As many pooled connections as the server has request threads (anyio's 40): a
            # smaller pool made page views queue for a connection, and overflow ones were opened
            # and tuned (WAL, pragmas) again on every request (bench/load.py).
            pool = {"pool_size": 40, "max_overflow": 20}
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **pool)
        _tune_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Read-only units of work (``read_only(engine)``) take no write lock: WAL readers never
        # wait for writers.  Everything else serialises writers up front.
        read = conn.get_execution_options().get(READ_ONLY_OPTION)
        conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


READ_ONLY_OPTION = "countylab_read_only"


def make_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions for units of work; ``read_only`` ones must not write (SQLite: no write lock)."""
    bind = engine.execution_options(**{READ_ONLY_OPTION: True}) if read_only else engine
    return sessionmaker(bind, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commits on success, rolls everything back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
