"""Helpers of the approval-workflow tests: a submitted application in one call, decisions by name."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from countylab.operations import applications, workflow
from countylab.operations.applications import ApplicationInput, RequestedDataset
from countylab.operations.workflow import SecurityTerms
from countylab.storage.operations_models import Application
from countylab.storage.workflow_models import ApprovalStep
from tests.operations.conftest import World


def submitted(
    world: World,
    *,
    datasets: tuple[str, ...] = ("crops",),
    by: str = "dev",
    purpose: str = "public_good",
    channels: tuple[str, ...] = ("dp_query", "sandbox_job"),
    scenario_by: str = "agri",
    key: str | None = None,
    title: str = "农作物估产模型",
) -> int:
    """Publish a scenario offering ``datasets`` and submit an application to it; returns its id."""
    key = key or "-".join(datasets) + f"-{len(world.facts)}"
    sid = world.scenario(key, by=scenario_by, datasets=datasets)
    actor = world.principal(by)
    with world.lab.tx() as s:
        app = applications.create(
            s,
            actor,
            ApplicationInput(
                scenario_id=sid,
                title=title,
                purpose=purpose,
                datasets=tuple(RequestedDataset(world.datasets[d]) for d in datasets),
                channels=channels,
                starts_on=world.today + timedelta(days=7),
                ends_on=world.today + timedelta(days=300),
                expected_outputs="按乡镇的估产表",
                commitments=tuple(applications.COMMITMENTS),
            ),
            today=world.today,
        )
        applications.submit(s, actor, app.id, today=world.today)
        return app.id


def now(world: World) -> datetime:
    return world.lab.clock()


def precheck(
    world: World, app_id: int, decision: str = "pass", reason: str = "", by: str = "operator"
) -> None:
    with world.lab.tx() as s:
        workflow.precheck(s, world.principal(by), app_id, decision, reason, now=now(world))


def open_steps(world: World, app_id: int, kind: str | None = None) -> list[ApprovalStep]:
    with world.lab.read() as s:
        rows = [st for st in workflow.steps_of(s, app_id) if st.status == "open"]
        for r in rows:
            s.expunge(r)
    return [r for r in rows if kind is None or r.kind == kind]


def decide(
    world: World,
    app_id: int,
    kind: str,
    by: str,
    decision: str = "approve",
    reason: str = "",
    terms: SecurityTerms | None = None,
    org: str | None = None,
) -> None:
    steps = open_steps(world, app_id, kind)
    if org is not None:
        steps = [st for st in steps if st.org_id == world.orgs[org]]
    assert steps, f"no open {kind} step"
    with world.lab.tx() as s:
        workflow.decide(s, world.principal(by), steps[0].id, decision, reason, now=now(world), terms=terms)


def status(world: World, app_id: int) -> str:
    with world.lab.read() as s:
        app = s.get(Application, app_id)
        assert app is not None
        return app.status


def kinds_open(world: World, app_id: int) -> list[str]:
    return sorted(st.kind for st in open_steps(world, app_id))


def step_rows(world: World, app_id: int) -> list[dict[str, Any]]:
    with world.lab.read() as s:
        return [
            {"round": st.round, "kind": st.kind, "status": st.status, "org_id": st.org_id}
            for st in workflow.steps_of(s, app_id)
        ]
