"""Migrations and ORM models agree, on SQLite and on PostgreSQL.

After ``alembic upgrade head`` the live schema is compared with the models' metadata by
Alembic's own autogenerate comparison: a column added to a model without a migration (or a
migration that drifts from its model) shows up as a difference and fails here, long before a
county server meets it.  Triggers and functions (the audit log's append-only guard) are not
part of SQLAlchemy metadata, so they are checked separately.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

import countylab.storage
from countylab.storage import migrate
from countylab.storage.models import Base
from tests.support import build_lab


def _load_every_model_module() -> None:
    """Tables live in ``storage/models.py`` and siblings such as ``jobs_models.py``: load them all."""
    for info in pkgutil.iter_modules(countylab.storage.__path__):
        if info.name.endswith("models"):
            importlib.import_module(f"countylab.storage.{info.name}")


def _flatten(diffs: list[Any]) -> list[Any]:
    out: list[Any] = []
    for d in diffs:
        out.extend(d if isinstance(d, list) else [d])  # column modifications come grouped in lists
    return out


def schema_differences(engine: Any) -> list[Any]:
    _load_every_model_module()
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": False, "render_as_batch": True}
        )
        return _flatten(compare_metadata(context, Base.metadata))


def test_upgrade_head_matches_the_models(tmp_path: Path, db_url: str) -> None:
    lab = build_lab(tmp_path, db_url)  # runs `alembic upgrade head`
    try:
        assert migrate.current_revision(lab.engine) == migrate.head_revision(lab.engine)
        assert lab.is_initialised()
        diffs = schema_differences(lab.engine)
        assert diffs == [], "models and migrations disagree:\n" + "\n".join(map(repr, diffs))
        tables = set(inspect(lab.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        lab.close()


def test_upgrade_is_idempotent_and_keeps_the_audit_triggers(tmp_path: Path, db_url: str) -> None:
    lab = build_lab(tmp_path, db_url)
    try:
        lab.migrate()  # a second upgrade is a no-op, never an error
        with lab.engine.connect() as conn:
            if lab.engine.dialect.name == "sqlite":
                rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars()
                assert {"audit_events_no_update", "audit_events_no_delete"} <= set(rows)
            else:
                rows = conn.execute(
                    text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_events'::regclass")
                ).scalars()
                assert "audit_events_append_only" in set(rows)
    finally:
        lab.close()


def test_the_comparison_notices_drift(tmp_path: Path) -> None:
    """The check above can fail: drop a column behind Alembic's back and it is reported."""
    lab = build_lab(tmp_path)
    try:
        with lab.engine.begin() as conn:
            conn.execute(text("ALTER TABLE projects DROP COLUMN description"))
        diffs = schema_differences(lab.engine)
        added = [(d[2], d[3].name) for d in diffs if d[0] == "add_column"]
        assert ("projects", "description") in added, diffs
    finally:
        lab.close()
