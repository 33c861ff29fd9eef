"""Composition root: one county lab, built in plain code from its settings.

Read this file to see the whole system.  :class:`Lab` holds every service as a typed attribute:

========================  ===========================================================  =====================
attribute                 what it is                                                   area (glossary)
========================  ===========================================================  =====================
``engine``/``sessions``   the metadata database (SQLite or PostgreSQL) and its units     storage
                          of work (:meth:`Lab.tx` writes, :meth:`Lab.read` only reads)
``warehouse``             versioned Parquet snapshots and push streams (DuckDB reads)   data middle platform
``ingestion``             uploads, pushes and compaction into versions                   data middle platform
``maintenance``           background compaction and crash clean-up                       data middle platform
``connectors``            the scheduler of database pulls                                data middle platform
``gateway``               the differentially private SQL gateway (built on first use)    data black box
``jobs``                  the compute center: job service, dispatcher, outboxes          compute center
``airlock``               release requests, automatic checks, reviews, releases          airlock
``models``                registered models served as prediction APIs                    airlock (serving)
``checkpoints``           signed checkpoints of the audit chain head, into the witness   audit
``notify``                notifications sent on by e-mail and webhook (the outbox)       notifications
``server``                this process's identity and heartbeat in ``lab_servers``       storage
``election``              who runs the singleton services across workers and servers     storage
``locks``                 cross-process locks by name (datasets, connectors)             storage
========================  ===========================================================  =====================

The web app (:mod:`countylab.web.app`) and the CLI (:mod:`countylab.cli`) are the entry points;
they build one ``Lab`` from :class:`~countylab.config.Settings` and pass it down.  Construction is
cheap (no threads, no sandbox probe, no OpenDP import): tests build many labs.  Long-running
workers start with :meth:`Lab.start_background` (``countylab serve``/``demo``).

**Several processes, one database.**  ``serve --workers N`` and several servers share the
metadata database.  Background services come in two kinds: *per process* ones serve the requests
of their own process (the DP worker pool, the model worker pool) and run everywhere; *singletons*
(job dispatcher, connector scheduler, compaction, airlock rechecks, audit checkpoints, demo
feeds) run only in the process that holds the lab's leadership (:mod:`countylab.storage.leader`:
a PostgreSQL advisory lock, or a flock next to the SQLite file); when that process dies another
one takes over within ``leader_retry_s``.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from countylab import audit
from countylab.airlock.checking import StaleRechecks
from countylab.airlock.checkrun import CheckLimits
from countylab.airlock.service import AirlockService
from countylab.airlock.sources import IndexCache
from countylab.audit.checkpoints import CheckpointService
from countylab.catalog import segment
from countylab.catalog.ingestion import Ingestion
from countylab.catalog.maintenance import Maintenance
from countylab.catalog.push_commit import recover_hidden
from countylab.config import Settings
from countylab.connectors.scheduler import Scheduler
from countylab.errors import PermissionDenied
from countylab.identity.access import Principal
from countylab.identity.cache import PrincipalCache
from countylab.jobs.center import JobsCenter
from countylab.notify.delivery import Delivery
from countylab.operations.expiry import ExpirySweep
from countylab.operations.publicity import WorkflowSweep
from countylab.privacy.stale_runs import StaleQueryRuns
from countylab.serving.registry import ModelService
from countylab.serving.worker import WorkerPool
from countylab.showcase.metrics import MetricRefresher
from countylab.storage import migrate
from countylab.storage.all_models import load_all
from countylab.storage.db import make_engine, make_session_factory, transaction
from countylab.storage.leader import Election, NamedLocks, ServerRegistry, leader_lock_file
from countylab.storage.models import Dataset, User, utcnow
from countylab.storage.warehouse import Warehouse

if TYPE_CHECKING:
    from countylab.airlock.checks import OcrEngine
    from countylab.privacy.gateway import QueryGateway

load_all()  # every table known to the ORM before any session runs


#: a background service: (name, start, stop)
Service = tuple[str, Callable[[], None], Callable[[], None]]


class Lab:
    """One county lab: its settings, metadata database, warehouse and services."""

    #: seconds between a candidate's tries for leadership (and the leader's checks of its lock)
    leader_retry_s = 1.0

    def __init__(self, settings: Settings, *, engine: Engine | None = None) -> None:
        self.settings = settings
        data = settings.data_dir
        #: the lab's clock (UTC).  Everything that compares with a date the lab sets (an
        #: authorisation's end date, a step's deadline, a public notice period) reads it here, so a
        #: test moves time by replacing it: ``lab.clock = lambda: datetime(2027, 1, 1, tzinfo=UTC)``.
        self.clock: Callable[[], datetime] = utcnow
        # -- storage ----------------------------------------------------------------------
        self.engine = engine or make_engine(settings.resolved_database_url)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        # read-only units of work see one snapshot, as SQLite's WAL readers do: on PostgreSQL's
        # default READ COMMITTED, a multi-statement read (the audit chain walk, then its head) would
        # mix states of concurrent writers and report a false "truncated" chain
        reads = self.engine
        if self.engine.dialect.name == "postgresql":
            reads = self.engine.execution_options(isolation_level="REPEATABLE READ")
        self.read_sessions: sessionmaker[Session] = make_session_factory(reads, read_only=True)
        self.principals = PrincipalCache()  # bearer token -> principal, a few seconds
        self.warehouse = Warehouse(settings.warehouse_dir)
        segment.use_cache_dir(data / "cache" / "segment")  # jieba's dictionary cache, private
        self.server = ServerRegistry(self.sessions)  # this process in lab_servers, beating
        self.locks = NamedLocks(self.engine, data / "locks")
        # -- data middle platform (数据中台) ------------------------------------------------
        self.ingestion = Ingestion(
            self.sessions,
            self.warehouse,
            data / "uploads",
            max_upload_bytes=settings.upload_max_mb << 20,
            read_sessions=self.read_sessions,
        )
        self.ingestion.cross_process = self.locks  # one writer per dataset across processes
        self.ingestion.committer.summaries.period_s = settings.push_summary_period_s
        self.maintenance = Maintenance(self)
        self.connectors = Scheduler(self)
        # -- data black box (数据黑匣): the DP gateway, built on first use (OpenDP costs ~1 s) --
        self._gateway: QueryGateway | None = None
        self._gateway_lock = threading.Lock()
        # -- compute center (算力中心) ------------------------------------------------------
        self.jobs = JobsCenter(self)
        # -- airlock (结果出域审核) and in-domain model serving ------------------------------
        airlock_dir = data / "airlock"
        self.airlock = AirlockService(
            store_dir=airlock_dir,
            index_cache=IndexCache(airlock_dir / "index"),
            read_paths=self.ingestion.read_paths,
            ocr=_ocr(),
            check_limits=CheckLimits(settings.check_time_s, settings.check_memory_mb),
        )
        self.model_workers = WorkerPool()  # started on the first prediction; reaped when idle
        self.models = ModelService(
            models_dir=data / "models",
            pool=self.model_workers,
            read_paths=self.ingestion.read_paths,
            clock=lambda: self.clock(),
        )
        rechecks = StaleRechecks(self.airlock, self.tx)  # requests a crash left "submitted"
        self.checkpoints = CheckpointService.from_settings(settings, self.read_sessions)
        # DP query runs a killed server left charged but without an outcome
        stale_queries = StaleQueryRuns(self.tx, wall_clock_s=settings.dp_wall_clock_s)
        # notifications leave by e-mail and webhook from the outbox, once across servers
        self.notify = Delivery(self.tx, settings)
        # authorisations end on their date, reminders 30 and 7 days ahead (operations platform)
        self.expiry = ExpirySweep(self.tx, lambda: self.clock(), self.jobs.service)
        # -- background services, started by ``serve``/``demo`` in this order -------------
        # per process: they serve the requests of their own process
        self._per_process: list[Service] = [
            ("dp-worker", _nothing, self._close_gateway),
            ("model-workers", self.model_workers.start, self.model_workers.stop),
        ]
        # singletons: only in the elected process, exactly once across workers and servers
        self._elected: list[Service] = [
            ("catalog-maintenance", self.maintenance.start, self.maintenance.stop),
            ("job-dispatcher", self.jobs.start, functools.partial(self.jobs.stop, release=True)),
            ("airlock-rechecks", rechecks.start, rechecks.stop),
            ("connector-scheduler", self.connectors.start, self.connectors.stop),
            ("audit-checkpoints", self.checkpoints.start, self.checkpoints.stop),
            ("dp-stale-queries", stale_queries.start, stale_queries.stop),
            ("notify-delivery", self.notify.start, self.notify.stop),
            ("showcase-metrics", (refresher := MetricRefresher(self)).start, refresher.stop),
            ("authorisation-expiry", self.expiry.start, self.expiry.stop),
            ("approval-workflow", (wf := WorkflowSweep(self.tx, lambda: self.clock())).start, wf.stop),
        ]
        self.election = Election(
            self.engine,
            on_elected=self._start_singletons,
            on_deposed=self._stop_singletons,
            lock_file=leader_lock_file(self.engine, data),
            retry_s=self.leader_retry_s,
        )
        self._background_started = False

    # -- the DP gateway -----------------------------------------------------------------------
    @property
    def gateway(self) -> QueryGateway:
        """The DP SQL gateway; its worker processes are spawned on the first query."""
        with self._gateway_lock:
            if self._gateway is None:
                from countylab.privacy.gateway import QueryGateway
                from countylab.privacy.limits import GatewayConfig
                from countylab.privacy.spec import EngineSettings
                from countylab.privacy.worker import sandbox_limits

                engine = EngineSettings(limits=sandbox_limits(self.settings))
                config = GatewayConfig.from_settings(self.settings)
                self._gateway = QueryGateway(self.tx, self.ingestion, settings=engine, config=config)
                self._gateway.clock = lambda: self.clock()  # authorisations end by the lab's clock
            return self._gateway

    @gateway.setter
    def gateway(self, gateway: QueryGateway) -> None:
        """Use a gateway built elsewhere (tests and benchmarks run one in-process)."""
        with self._gateway_lock:
            gateway.clock = lambda: self.clock()
            self._gateway = gateway

    def _close_gateway(self) -> None:
        with self._gateway_lock:
            if self._gateway is not None:
                self._gateway.close()

    # -- lifecycle --------------------------------------------------------------------------
    def migrate(self) -> None:
        """Bring the metadata schema to the newest migration (idempotent)."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        from countylab.storage.roles import upgrade_as_owner  # the owner role migrates (PostgreSQL)

        upgrade_as_owner(self.settings, self.engine)

    def recover(self, *, grace_s: float = 3600.0) -> int:
        """Clean-up after a crash: orphaned warehouse versions and stale uploads."""
        return self.ingestion.recover(grace_s=grace_s)

    def is_initialised(self) -> bool:
        try:
            return migrate.current_revision(self.engine) == migrate.head_revision(self.engine)
        except Exception:  # noqa: BLE001 - an unreachable or empty database is "not initialised"
            return False

    def has_users(self) -> bool:
        with self.sessions() as s:
            return s.execute(select(User.id).limit(1)).first() is not None

    # -- background services (compaction, connectors, job dispatcher, model workers) -------
    def register_background(
        self, name: str, start: Callable[[], None], stop: Callable[[], None], *, elected: bool = True
    ) -> None:
        """Areas register their long-running workers here; ``serve`` starts and stops them all.

        ``elected`` (the default, the safe choice): run only in the process that leads, so a
        service registered by an entry point (the demo feeds) runs once across workers.
        """
        (self._elected if elected else self._per_process).append((name, start, stop))

    def start_background(self) -> None:
        """Beat in ``lab_servers``, start the per-process services, then campaign for the
        singletons (the first try is made here, so a lone process leads when this returns)."""
        if self._background_started:
            return
        self._background_started = True
        self.server.start()
        self._recover_pushes()
        for _name, start, _stop in self._per_process:
            start()
        self.election.start()

    def stop_background(self) -> None:
        """Singletons first (the dispatcher records its stopped jobs while we still beat), then
        the per-process services, then the heartbeat row is marked stopped.  Idempotent, and
        safe without a start (a DP query in a test may have spawned gateway workers)."""
        self._background_started = False
        self.election.stop()
        for _name, _start, stop in reversed(self._per_process):
            stop()
        self.server.stop()

    def _recover_pushes(self) -> None:
        """Publish (or drop) the pushed groups a killed process left hidden, before this process
        serves: a client retrying such a push hears "duplicate" from whichever worker it reaches,
        so its rows must be visible by then.  Every process does it; files a live process is
        still writing are claimed (:mod:`countylab.storage.filelock`) and left alone."""
        with self.read() as s:
            names = {d.name: d.id for d in s.execute(select(Dataset)).scalars()}
        recover_hidden(self.warehouse, self.tx, names)

    def _start_singletons(self) -> None:
        self.server.mark_leader(True)
        for _name, start, _stop in self._elected:
            start()

    def _stop_singletons(self) -> None:
        for _name, _start, stop in reversed(self._elected):
            stop()
        with contextlib.suppress(Exception):  # deposed because the database is gone: nothing to record
            self.server.mark_leader(False)

    @property
    def is_leader(self) -> bool:
        """Whether this process runs the singleton services now."""
        return self.election.is_leader

    def close(self) -> None:
        self.stop_background()
        self.engine.dispose()

    # -- units of work ----------------------------------------------------------------------
    @contextmanager
    def tx(self) -> Iterator[Session]:
        with transaction(self.sessions) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A unit of work that only reads (takes no write lock on SQLite); writing in it is a bug."""
        with transaction(self.read_sessions) as session:
            yield session

    def record_denial(self, actor: Principal, error: PermissionDenied, **extra: Any) -> None:
        """Write a ``permission.denied`` event in its own transaction (the request's rolls back)."""
        details = {"permission": error.details.get("permission"), "reason": error.details.get("reason")}
        with self.tx() as s:
            audit.record(
                s,
                actor,
                "permission.denied",
                str(error.details.get("target", "")),
                outcome="denied",
                **{**details, **extra},
            )


def _nothing() -> None:
    """The DP gateway has nothing to start: its workers are spawned by the first query."""


def _ocr() -> OcrEngine | None:
    """Tesseract with Chinese when installed; otherwise images are marked "needs human eyes"."""
    if shutil.which("tesseract") is None:
        return None
    from countylab.airlock.checks.ocr import find_tesseract

    return find_tesseract()
