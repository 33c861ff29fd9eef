"""Composition root: builds the adapters and services of one lab from its settings."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from countylab import audit
from countylab.catalog.ingestion import Ingestion
from countylab.catalog.maintenance import Maintenance
from countylab.config import Settings
from countylab.errors import PermissionDenied
from countylab.identity.access import Principal
from countylab.identity.cache import PrincipalCache
from countylab.storage import migrate
from countylab.storage.all_models import load_all
from countylab.storage.db import make_engine, make_session_factory, transaction
from countylab.storage.models import User
from countylab.storage.warehouse import Warehouse

load_all()  # every table known to the ORM before any session runs

#: capabilities that attach services and background workers to a Lab: ``attach(lab)``
AREAS = (
    "countylab.privacy.wiring",
    "countylab.jobs.wiring",
    "countylab.airlock.wiring",
    "countylab.connectors.wiring",
)


class Lab:
    """One county lab: its settings, metadata database and (later) warehouse and engines."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.resolved_database_url)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.read_sessions: sessionmaker[Session] = make_session_factory(self.engine, read_only=True)
        self.principals = PrincipalCache()  # bearer token -> principal, a few seconds
        self.warehouse = Warehouse(settings.warehouse_dir)
        self.ingestion = Ingestion(
            self.sessions,
            self.warehouse,
            settings.data_dir / "uploads",
            max_upload_bytes=settings.upload_max_mb << 20,
            read_sessions=self.read_sessions,
        )
        self._background: list[tuple[str, Callable[[], None], Callable[[], None]]] = []
        self.maintenance = Maintenance(self)
        self.register_background("catalog-maintenance", self.maintenance.start, self.maintenance.stop)
        for area in AREAS:
            try:
                module = importlib.import_module(area)
            except ModuleNotFoundError as exc:  # a capability not built yet
                if exc.name not in (area, area.rsplit(".", 1)[0]):
                    raise
                continue
            module.attach(self)

    # -- lifecycle --------------------------------------------------------------------------
    def migrate(self) -> None:
        """Bring the metadata schema to the newest migration (idempotent)."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(self.engine)

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
    def register_background(self, name: str, start: Callable[[], None], stop: Callable[[], None]) -> None:
        """Areas register their long-running workers here; ``serve`` starts and stops them all."""
        self._background.append((name, start, stop))

    def start_background(self) -> None:
        for _name, start, _stop in self._background:
            start()

    def stop_background(self) -> None:
        for _name, _start, stop in reversed(self._background):
            stop()

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
        with self.tx() as s:
            audit.append(
                s,
                actor_id=actor.user_id,
                actor=actor.username,
                action="permission.denied",
                target=str(error.details.get("target", "")),
                outcome="denied",
                details={
                    "permission": error.details.get("permission"),
                    "reason": error.details.get("reason"),
                    **extra,
                },
            )
