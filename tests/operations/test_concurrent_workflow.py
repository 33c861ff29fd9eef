"""Two reviewers deciding the same step at once: exactly one wins, the other is told it was
already decided (real threads, SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from countylab.errors import Conflict
from countylab.operations import workflow
from countylab.storage.workflow_models import ApprovalStep
from tests.operations.conftest import World
from tests.operations.workflow_helpers import now, open_steps, precheck, status, submitted


def _race(n: int, action: Callable[[], None]) -> tuple[int, list[BaseException]]:
    barrier = threading.Barrier(n)
    wins: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            action()
            wins.append(1)
        except BaseException as exc:  # noqa: BLE001 - collected and checked below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return len(wins), errors


def test_concurrent_prechecks_one_wins(world: World) -> None:
    app_id = submitted(world)
    op = world.principal("operator")

    def act() -> None:
        with world.lab.tx() as s:
            workflow.precheck(s, op, app_id, "pass", "", now=now(world))

    wins, errors = _race(4, act)
    assert wins == 1 and len(errors) == 3
    assert all(isinstance(e, Conflict) for e in errors), errors
    assert all("已" in e.message_zh for e in errors if isinstance(e, Conflict))
    assert status(world, app_id) == "in_review"
    with world.lab.read() as s:
        assert s.query(ApprovalStep).filter_by(application_id=app_id, kind="precheck").count() == 1


def test_concurrent_security_decisions_one_wins(world: World) -> None:
    app_id = submitted(world)
    precheck(world, app_id)
    consent = open_steps(world, app_id, "consent")[0]
    with world.lab.tx() as s:
        workflow.decide(s, world.principal("agri"), consent.id, "approve", "", now=now(world))
    step = open_steps(world, app_id, "security")[0]
    st = world.principal("steward")
    decisions = iter(["approve", "refuse", "approve"])
    lock = threading.Lock()

    def act() -> None:
        with lock:
            decision = next(decisions)
        with world.lab.tx() as s:
            workflow.decide(s, st, step.id, decision, "理由", now=now(world))

    wins, errors = _race(3, act)
    assert wins == 1 and len(errors) == 2
    assert all(isinstance(e, Conflict) and e.details.get("reason") == "already_decided" for e in errors), (
        errors
    )
    with world.lab.read() as s:
        row = s.get(ApprovalStep, step.id)
        assert row is not None and row.version == 2  # decided exactly once
    assert status(world, app_id) in ("publicising", "rejected")


def test_two_departments_consenting_at_once_never_both_miss_the_next_stage(world: World) -> None:
    """Both consents land (one may be asked to retry); the security step opens exactly once."""
    app_id = submitted(world, datasets=("crops", "power"), purpose="public_good")
    precheck(world, app_id)
    steps = {st.org_id: st for st in open_steps(world, app_id, "consent")}
    agri, econ = world.principal("agri"), world.principal("econ")

    def consent(p_name: str) -> Callable[[], None]:
        p = agri if p_name == "agri" else econ
        step = steps[p.org_id]

        def act() -> None:
            for _ in range(5):  # a clear "changed by someone else, retry" is allowed; retry like a user
                try:
                    with world.lab.tx() as s:
                        workflow.decide(s, p, step.id, "approve", "", now=now(world))
                    return
                except Conflict as exc:
                    if exc.details.get("reason") == "already_decided":
                        raise

        return act

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        barrier.wait()
        try:
            consent(name)()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("agri", "econ")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert [st.kind for st in open_steps(world, app_id)] == ["security"]
