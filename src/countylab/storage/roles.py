"""PostgreSQL: the two-role setup (owner migrates, app role serves without DDL rights).

Why: the audit log's triggers refuse UPDATE and DELETE, but a role that owns the table can
drop the triggers.  The server therefore connects as an *app role* that owns nothing: it
reads and writes rows, may only INSERT and SELECT audit events (so even with the trigger
gone it cannot edit one), and cannot DROP, ALTER or CREATE anything.  Migrations run as the
owner role named by ``database_admin_url``.
"""

from __future__ import annotations

import re

from sqlalchemy import Engine, create_engine, text

from countylab.config import Settings
from countylab.errors import UserError
from countylab.storage import migrate
from countylab.storage.db import make_engine

_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def admin_url(settings: Settings) -> str:
    """The owner's URL: ``database_admin_url``, else the app's own (single-role setups, SQLite)."""
    url = settings.database_admin_url or settings.resolved_database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def app_role_grants(role: str) -> list[str]:
    """The statements that make ``role`` an app role; idempotent, run after every migration."""
    if not _ROLE.match(role):
        raise UserError(
            f"角色名“{role}”无效：只能用小写字母、数字和下划线",
            f"Invalid role name '{role}': use a-z, 0-9 and _",
        )
    return [
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",  # PostgreSQL < 15 let every role create tables
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {role}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {role}",
        # tables of later migrations (created by the owner) get the same DML rights
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}",
    ]


def grant_app_role(settings: Settings, role: str) -> None:
    """Apply :func:`app_role_grants` as the owner (``database_admin_url``); PostgreSQL only."""
    url = admin_url(settings)
    if not url.startswith("postgresql"):
        raise UserError("只有 PostgreSQL 需要应用角色", "An app role applies to PostgreSQL only")
    statements = app_role_grants(role)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
            if exists is None:
                raise UserError(
                    f"PostgreSQL 角色“{role}”不存在（先 CREATE ROLE {role} LOGIN PASSWORD …）",
                    f"PostgreSQL role '{role}' does not exist (CREATE ROLE {role} LOGIN PASSWORD … first)",
                )
            for sql in statements:
                conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def upgrade_as_owner(settings: Settings, engine: Engine) -> None:
    """Run the migrations as the owner when ``database_admin_url`` names one, else on ``engine``.

    The app role cannot create or alter tables, so ``countylab init`` (and every upgrade) must
    reach the database as its owner; the server keeps its own engine for rows.
    """
    if not settings.database_admin_url:
        migrate.upgrade(engine)
        return
    owner = make_engine(admin_url(settings))
    try:
        migrate.upgrade(owner)
    finally:
        owner.dispose()
