"""PostgreSQL two-role setup: the server's app role writes the lab's rows but cannot touch the audit guard.

The owner role migrates; the app role gets only the grants of ``countylab audit grant-app-role``.
Connected as the app role, dropping or disabling the trigger, altering or dropping the table,
editing, deleting or truncating audit events all fail, while the lab's ordinary writes work.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError

from countylab import audit
from countylab.audit.checkpoints import CheckpointService
from countylab.cli import main as cli_main
from countylab.config import Settings
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.storage.roles import app_role_grants
from tests.conftest import PG_URL, _pg_database


@pytest.fixture
def two_roles(tmp_path) -> Iterator[tuple[str, str, str]]:
    """(owner URL, app URL, app role) on a fresh database; the role is dropped after the database."""
    databases = _pg_database()
    owner = next(databases)
    role = "app_" + uuid.uuid4().hex[:10]
    server = create_engine(
        PG_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with server.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
    user_and_host = owner.split("://", 1)[1]
    app = owner.split("://", 1)[0] + "://" + role + user_and_host[user_and_host.index("@") :]
    try:
        yield owner, app, role
    finally:
        for _ in databases:  # drops the database
            pass
        with server.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        server.dispose()


def _settings(tmp_path, database_url: str, admin: str = "") -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "lab-data", database_url=database_url, database_admin_url=admin
    )


def test_app_role_writes_rows_but_cannot_rewrite_the_audit_log(tmp_path, two_roles):
    owner, app, role = two_roles
    settings = _settings(tmp_path, app, admin=owner)
    lab = Lab(settings)
    try:
        lab.migrate()  # as the owner (database_admin_url), though the lab's engine is the app role's
    finally:
        lab.close()
    config = tmp_path / "countylab.toml"
    config.write_text(
        f'data_dir = "{settings.data_dir}"\ndatabase_url = "{app}"\ndatabase_admin_url = "{owner}"\n'
    )
    assert cli_main(["audit", "grant-app-role", role, "--config", str(config)]) == 0
    assert cli_main(["audit", "grant-app-role", role, "--config", str(config)]) == 0  # idempotent

    lab = Lab(settings)  # … the server connects as the app role
    try:
        assert lab.is_initialised()
        with lab.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar() == role
        # the lab's normal writes work: an org, a user (with its audit events), a token, a checkpoint
        with lab.tx() as s:
            org = ids.create_org(s, SYSTEM, name="县大数据中心", kind="department")
            user_id = ids.create_user(
                s,
                SYSTEM,
                username="alice",
                password="pw-long-enough-1",
                display_name="A",
                roles=["developer"],
                org_id=org.id,
            ).id
            ids.create_token(s, SYSTEM, user_id=user_id, name="t", days=1)
            audit.record(s, None, "test.app_role")
        checkpoint, wrote = CheckpointService.from_settings(settings, lab.read_sessions).run_once()
        assert wrote and checkpoint.event_id >= 3
        with lab.read() as s:
            assert audit.verify(s).ok

        # and none of the rewrites an insider would start with
        for sql in (
            "DROP TRIGGER audit_events_append_only ON audit_events",
            "ALTER TABLE audit_events DISABLE TRIGGER ALL",
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
            "DROP FUNCTION audit_events_append_only() CASCADE",
            "DROP TABLE audit_events",
            "ALTER TABLE audit_events RENAME TO audit_old",
            "UPDATE audit_events SET actor = 'mallory' WHERE id = 1",
            "DELETE FROM audit_events WHERE id = 1",
            "TRUNCATE audit_events",
            "CREATE TABLE audit_copy (id int)",
            "UPDATE alembic_version SET version_num = 'x'",
        ):
            with (
                pytest.raises(DBAPIError, match="must be owner|permission denied"),
                lab.engine.begin() as conn,
            ):
                conn.exec_driver_sql(sql)
        with lab.read() as s:
            assert audit.verify(s).ok
    finally:
        lab.close()


def test_grants_refuse_a_role_name_that_is_not_an_identifier():
    from countylab.errors import UserError

    for bad in ("app; DROP TABLE users", "App", "1app", "a-b"):
        with pytest.raises(UserError):
            app_role_grants(bad)
    assert any("audit_events" in sql and "REVOKE" in sql for sql in app_role_grants("countylab_app"))
