"""The audit log is append-only and its hash chain reveals any edit, deletion or truncation."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from countylab import audit
from countylab.identity.access import SYSTEM


def _fill(lab, n: int = 5) -> None:
    for i in range(n):
        with lab.tx() as s:
            audit.append(
                s,
                actor_id=None,
                actor="system",
                action=f"test.{i}",
                target=f"t:{i}",
                details={"i": i, "名": "值"},
            )


def _without_guard(lab, sql: str) -> None:
    """What an attacker with database access would do: lift the trigger, then edit."""
    dialect = lab.engine.dialect.name
    with lab.engine.begin() as conn:
        if dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        conn.exec_driver_sql(sql)


def test_intact_chain_verifies(any_lab):
    _fill(any_lab)
    with any_lab.tx() as s:
        report = audit.verify(s)
    assert report.ok and report.events == 5


def test_database_refuses_update_and_delete(any_lab):
    _fill(any_lab, 2)
    for sql in (
        "UPDATE audit_events SET actor = 'mallory' WHERE id = 1",
        "DELETE FROM audit_events WHERE id = 2",
    ):
        with pytest.raises(DBAPIError, match="append-only"), any_lab.engine.begin() as conn:
            conn.execute(text(sql))


@pytest.mark.parametrize(
    ("sql", "first_bad", "problem"),
    [
        ("UPDATE audit_events SET details = '{\"i\":99}' WHERE id = 3", 3, "edited"),
        ("UPDATE audit_events SET actor = 'mallory' WHERE id = 2", 2, "edited"),
        ("DELETE FROM audit_events WHERE id = 4", 4, "deleted"),
        ("DELETE FROM audit_events WHERE id = 5", 5, "truncated"),
    ],
)
def test_tampering_is_reported_at_the_first_bad_event(any_lab, sql, first_bad, problem):
    _fill(any_lab)
    _without_guard(any_lab, sql)
    with any_lab.tx() as s:
        report = audit.verify(s)
    assert not report.ok
    assert report.first_bad_id == first_bad
    assert problem in report.problem


def test_recomputed_forgery_breaks_the_next_link(any_lab):
    """Editing a row and recomputing its own hash still breaks the following event's link."""
    _fill(any_lab)
    with any_lab.tx() as s:
        ev = s.execute(text("SELECT * FROM audit_events WHERE id = 2")).mappings().one()
    forged = audit.log.event_hash(
        id=2,
        ts=ev["ts"],
        actor_id=None,
        actor="mallory",
        action=ev["action"],
        target=ev["target"],
        outcome=ev["outcome"],
        details=ev["details"],
        prev_hash=ev["prev_hash"],
    )
    _without_guard(any_lab, f"UPDATE audit_events SET actor = 'mallory', hash = '{forged}' WHERE id = 2")
    with any_lab.tx() as s:
        report = audit.verify(s)
    assert not report.ok and report.first_bad_id == 3 and "link" in report.problem


def test_concurrent_appends_stay_one_linear_chain(any_lab):
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(10):
                with any_lab.tx() as s:
                    audit.append(s, actor_id=None, actor=SYSTEM.username, action="race", target=f"{k}:{i}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with any_lab.tx() as s:
        report = audit.verify(s)
    assert report.ok and report.events == 60


def test_rolled_back_work_leaves_no_event(lab):
    with pytest.raises(RuntimeError), lab.tx() as s:
        audit.append(s, actor_id=None, actor="system", action="doomed")
        raise RuntimeError("boom")
    with lab.tx() as s:
        assert audit.verify(s).events == 0
