"""A DP query whose server was killed after the charge gets its outcome: failed, still charged, audited."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from countylab.identity.access import SYSTEM
from countylab.identity.projects import create_project
from countylab.lab import Lab
from countylab.privacy.stale_runs import StaleQueryRuns, horizon_s
from countylab.storage.models import AuditEvent, utcnow
from countylab.storage.privacy_models import QueryRun


def _run(lab: Lab, project_id: int, age_s: float) -> int:
    with lab.tx() as s:
        run = QueryRun(
            project_id=project_id,
            username="ana",
            sql="SELECT COUNT(*) FROM residents",
            mode="dp",
            epsilon=0.5,
            epsilon_spent=0.5,
            status="running",
            created_at=utcnow() - timedelta(seconds=age_s),
        )
        s.add(run)
        s.flush()
        return run.id


def test_orphaned_runs_fail_once_and_live_ones_are_left(lab: Lab) -> None:
    with lab.tx() as s:
        project = create_project(s, SYSTEM, slug="chaos", title="chaos").id
    wall = lab.settings.dp_wall_clock_s
    orphan = _run(lab, project, horizon_s(wall) + 5)
    live = _run(lab, project, 1.0)  # may still be running in some worker: not touched
    service = StaleQueryRuns(lab.tx, wall_clock_s=wall)
    assert service.run_once() == [orphan]
    assert service.run_once() == []  # once only
    with lab.read() as s:
        runs = {r.id: r for r in s.execute(select(QueryRun)).scalars()}
        events = s.execute(select(AuditEvent).where(AuditEvent.action == "query.failed")).scalars().all()
    assert runs[orphan].status == "failed" and runs[orphan].epsilon_spent == 0.5  # the charge stays
    assert runs[orphan].finished_at is not None and "stopped" in runs[orphan].error
    assert runs[live].status == "running"
    details = [json.loads(e.details) if isinstance(e.details, str) else e.details for e in events]
    assert [d["query_id"] for d in details] == [orphan]
    assert details[0]["code"] == "server_stopped"
