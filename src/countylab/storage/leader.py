"""Several server processes on one database: who is alive, and who runs the singletons.

Two mechanisms, both in the metadata database's own terms so no extra service is needed:

**Server identity and heartbeat** (:class:`ServerRegistry`).  Every server process writes a
row in ``lab_servers`` at start and beats it every ``beat_s`` seconds.  A job claimed by a
process whose beat is fresh belongs to that process and nobody else touches it; a job whose
process stopped beating for ``expire_s`` (killed, host gone) or stopped cleanly is recovered.
At start and with every beat a process also marks stopped the rows of *its own host* whose pid
is no longer alive and which missed three beats (its previous incarnation after a crash, a
sibling worker killed), so their jobs are recovered within seconds instead of after
``expire_s``.

**Leader election** (:class:`Election`) for the background services that must run exactly once
across workers and servers (job dispatcher, connector scheduler, compaction, airlock rechecks,
audit checkpoints, demo feeds):

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a dedicated
  connection.  The lock lives exactly as long as the database session: when the leader dies
  (even ``kill -9``) its socket closes, PostgreSQL ends the session and releases the lock, and
  the next candidate's retry (every ``retry_s``) wins it.  The leader checks its connection
  every ``retry_s``; a broken connection means the lock may already be someone else's, so it
  stops its services at once.
* SQLite: an exclusive ``flock`` on a file next to the database file.  SQLite is single-host
  by design (its locking does not work over network file systems), so a host-local lock is
  exactly as wide as the database itself; the kernel releases it the instant the holder dies,
  with no expiry to tune and no clock involved.  A lease row with heartbeat and expiry would
  add a take-over delay and a dependence on clocks for no gain on one host.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine, delete, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from countylab.storage.db import transaction
from countylab.storage.models import utcnow
from countylab.storage.server_models import LabServer

log = logging.getLogger(__name__)

#: the advisory-lock key of the singleton services ("countylab" in ASCII, fits a signed bigint)
LEADER_KEY = 0x636F756E74796C61
#: first key of the named cross-process locks (``NamedLocks``), a separate two-int key space
LOCK_SPACE = 0x636C


def new_server_id() -> str:
    """Unique per process start, so a restarted server never mistakes old claims for its own."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _host() -> str:
    return socket.gethostname()[:100]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def live_servers(session: Session, *, expire_s: float, now: datetime | None = None) -> set[str]:
    """Ids of the server processes whose heartbeat is fresh and which did not stop."""
    now = now or utcnow()
    q = select(LabServer.id).where(
        LabServer.stopped_at.is_(None), LabServer.heartbeat_at >= now - timedelta(seconds=expire_s)
    )
    return set(session.execute(q).scalars())


def gone_servers(session: Session, *, expire_s: float, now: datetime | None = None) -> set[str]:
    """Ids of the registered server processes that stopped, or whose heartbeat aged."""
    now = now or utcnow()
    q = select(LabServer.id).where(
        (LabServer.stopped_at.is_not(None)) | (LabServer.heartbeat_at < now - timedelta(seconds=expire_s))
    )
    return set(session.execute(q).scalars())


class ServerRegistry:
    """This process's row in ``lab_servers``, and the thread that beats it."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        server_id: str | None = None,
        beat_s: float = 2.0,
        expire_s: float = 15.0,
    ) -> None:
        self.sessions = sessions
        self.server_id = server_id or new_server_id()
        self.beat_s = beat_s
        self.expire_s = expire_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _tx(self) -> AbstractContextManager[Session]:
        return transaction(self.sessions)

    def register(self) -> None:
        """Write (or refresh) this process's row; mark dead local predecessors stopped."""
        now = utcnow()
        with self._tx() as s:
            row = s.get(LabServer, self.server_id)
            if row is None:
                me = LabServer(
                    id=self.server_id, host=_host(), pid=os.getpid(), started_at=now, heartbeat_at=now
                )
                s.add(me)
            else:
                row.heartbeat_at, row.stopped_at = now, None
            self._reap_local(s, now)
            # rows of long-dead servers are kept a day for the record, then dropped
            s.execute(delete(LabServer).where(LabServer.heartbeat_at < now - timedelta(days=1)))

    def _reap_local(self, s: Session, now: datetime) -> None:
        """Mark stopped the rows of this host whose process is gone (a crash, a kill -9): their
        jobs are recovered after a few missed beats, not after ``expire_s``.  Other hosts wait for
        the beat to age.  The missed beats matter too: two containers may share a host name
        while each has its own pid namespace, and a process that still beats is alive somewhere."""
        q = select(LabServer).where(
            LabServer.host == _host(),
            LabServer.stopped_at.is_(None),
            LabServer.heartbeat_at < now - timedelta(seconds=3 * self.beat_s),
        )
        for other in s.execute(q).scalars():
            if other.id != self.server_id and other.pid != os.getpid() and not _pid_alive(other.pid):
                other.stopped_at = now

    def beat(self) -> None:
        now = utcnow()
        with self._tx() as s:
            s.execute(
                update(LabServer)
                .where(LabServer.id == self.server_id)
                .values(heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )
            self._reap_local(s, now)

    def mark_leader(self, leading: bool) -> None:
        """Record whether this process leads (for operators, ``lab_servers.leading_since``)."""
        with self._tx() as s:
            s.execute(
                update(LabServer)
                .where(LabServer.id == self.server_id)
                .values(leading_since=utcnow() if leading else None)
                .execution_options(synchronize_session=False)
            )

    def live(self, session: Session) -> set[str]:
        """Live server ids, always including this one."""
        return live_servers(session, expire_s=self.expire_s) | {self.server_id}

    def start(self) -> None:
        if self._thread is not None:
            return
        self.register()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="countylab-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.beat_s):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - a database hiccup; the next beat retries
                log.exception("server heartbeat failed")

    def stop(self) -> None:
        """A clean stop: others may recover whatever this process left running at once."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=10)
        self._thread = None
        try:
            with self._tx() as s:
                s.execute(
                    update(LabServer)
                    .where(LabServer.id == self.server_id)
                    .values(stopped_at=utcnow(), leading_since=None)
                    .execution_options(synchronize_session=False)
                )
        except Exception:  # noqa: BLE001 - the database is gone: the beat will simply age
            log.exception("could not mark this server stopped")


class _PgLeaderLock:
    """The advisory lock on a connection kept for as long as we lead."""

    def __init__(self, engine: Engine, *, idle_timeout_s: float) -> None:
        self.engine = engine
        self.idle_timeout_s = idle_timeout_s
        self.conn: Connection | None = None

    def try_acquire(self) -> bool:
        conn = self.engine.connect()
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_KEY}).scalar())
            conn.commit()  # session-level lock: it outlives the transaction; do not sit "idle in tx"
        except Exception:
            conn.invalidate()
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._bound_idle(conn)
        self.conn = conn
        return True

    def _bound_idle(self, conn: Connection) -> None:
        """A leader that hangs (stopped, swapped out, partitioned) stops pinging; PostgreSQL then
        ends its session after ``idle_timeout_s`` and the lock passes on.  A dead one's socket
        closes at once.  (PostgreSQL 14+; older servers keep only the dead-socket case.)"""
        try:
            ms = int(self.idle_timeout_s * 1000)
            conn.execute(text(f"SET idle_session_timeout = {ms}"))
            conn.commit()
        except Exception:  # noqa: BLE001 - an older server without the setting
            conn.rollback()

    def still_held(self) -> bool:
        if self.conn is None:
            return False
        try:
            self.conn.execute(text("SELECT 1"))
            self.conn.commit()
        except Exception:  # noqa: BLE001 - the session is gone, and with it the lock
            self.conn.invalidate()
            self.conn.close()
            self.conn = None
            return False
        return True

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_KEY})
            conn.commit()
        except Exception:  # noqa: BLE001 - closing the session releases it anyway
            log.warning("could not unlock leadership; closing its session instead")
        conn.invalidate()  # never back to the pool: it carries the idle timeout
        conn.close()


class _FileLeaderLock:
    """An exclusive ``flock`` on a file: released by the kernel when the holder dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def still_held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor drops the flock


def sqlite_path(engine: Engine) -> Path | None:
    """The database file of a SQLite engine (None for PostgreSQL or an in-memory database)."""
    if engine.dialect.name != "sqlite":
        return None
    db = engine.url.database
    return Path(db) if db and db != ":memory:" else None


class Election:
    """Campaigns for leadership in a thread; runs ``on_elected`` when won, ``on_deposed`` when lost.

    ``lock_file``: where SQLite's flock lives (:func:`leader_lock_file`).  A process
    that never wins never runs the singletons; one that loses its lock stops them before trying
    again, so at no moment do two processes both believe they lead.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        on_elected: Callable[[], None],
        on_deposed: Callable[[], None],
        lock_file: Path,
        retry_s: float = 1.0,
    ) -> None:
        self.on_elected, self.on_deposed = on_elected, on_deposed
        self.retry_s = retry_s
        self._lock: _PgLeaderLock | _FileLeaderLock
        if engine.dialect.name == "postgresql":
            self._lock = _PgLeaderLock(engine, idle_timeout_s=max(5.0, 10 * retry_s))
        else:
            self._lock = _FileLeaderLock(lock_file)
        self.is_leader = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.elected = threading.Event()  # set while leading (tests wait on it)

    def start(self) -> None:
        """Try once now (a lone process leads when this returns), then keep campaigning."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._step()
        self._thread = threading.Thread(target=self._campaign, name="countylab-election", daemon=True)
        self._thread.start()

    def _campaign(self) -> None:
        while not self._stop.wait(self.retry_s):
            self._step()

    def _step(self) -> None:
        try:
            if not self.is_leader:
                if self._lock.try_acquire():
                    self.is_leader = True
                    self.elected.set()
                    log.warning("elected leader: running the lab's singleton services (pid %d)", os.getpid())
                    self.on_elected()
            elif not self._lock.still_held():
                log.error("lost leadership (database session gone): stopping the singleton services")
                self._depose()
        except Exception:  # noqa: BLE001 - the database is unreachable: try again later
            log.exception("leader election step failed")

    def _depose(self) -> None:
        self.is_leader = False
        self.elected.clear()
        try:
            self.on_deposed()
        finally:
            self._lock.release()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        if self.is_leader:
            self._depose()


def leader_lock_file(engine: Engine, data_dir: Path) -> Path:
    """SQLite's flock file: next to the database file (in the data folder for an in-memory one)."""
    db = sqlite_path(engine)
    if db is None:
        return data_dir / "leader.lock"
    return db.with_name(db.name + ".leader")


class NamedLocks:
    """Cross-process exclusive locks by name (a dataset, a connector), for both backends.

    PostgreSQL: ``pg_advisory_lock(space, crc32(name))`` on a connection held for the critical
    section (a second server on another host is excluded too).  SQLite: ``flock`` on
    ``<lock_dir>/<name>.lock`` (single host, like SQLite).  Threads of one process are excluded
    by the same lock (each holder uses its own connection or open file description).
    """

    def __init__(self, engine: Engine, lock_dir: Path) -> None:
        self.engine = engine
        self.lock_dir = lock_dir

    @contextmanager
    def hold(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold the lock named ``name``; with ``wait=False`` yields False at once if it is taken."""
        if self.engine.dialect.name == "postgresql":
            with self._pg(name, wait) as got:
                yield got
        else:
            with self._file(name, wait) as got:
                yield got

    @contextmanager
    def _pg(self, name: str, wait: bool) -> Iterator[bool]:
        import zlib

        key = zlib.crc32(name.encode()) - (1 << 31)  # a signed int4
        with self.engine.connect() as conn:
            fn = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
            answer = conn.execute(text(f"SELECT {fn}(:a, :b)"), {"a": LOCK_SPACE, "b": key}).scalar()
            conn.commit()
            got = True if wait else bool(answer)  # pg_advisory_lock returns void once it holds
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), {"a": LOCK_SPACE, "b": key})
                    conn.commit()

    @contextmanager
    def _file(self, name: str, wait: bool) -> Iterator[bool]:
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        fd = os.open(self.lock_dir / f"{safe}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                got = True
            except BlockingIOError:
                got = False
            yield got
        finally:
            os.close(fd)
