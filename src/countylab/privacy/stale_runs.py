"""Outcomes for DP queries whose server died after the charge (a crash, ``kill -9``).

The gateway charges the budget and writes the ``query_runs`` row (``running``) in one
transaction, runs the query, then records the outcome.  A process killed in between leaves a
charge without an outcome: the analyst was charged for a query nobody will ever answer or
record.  This service, elected to run once across servers (:mod:`countylab.storage.leader`),
gives each such row the one outcome a failure after the charge always gets: ``failed``, still
charged (the charge is data-independent and stays), audited as ``query.failed`` with reason
``server_stopped``.

Why by age and not by server: a query cannot be running longer than its wall clock (the
gateway's watchdog ends it), so a row ``running`` for longer than twice the wall clock plus a
margin — the same horizon after which an identical query stops waiting for it
(:func:`countylab.privacy.answers.stale`) — belongs to a process that is gone, whichever it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.periodic import Periodic
from countylab.storage.models import utcnow
from countylab.storage.privacy_models import QueryRun

log = logging.getLogger(__name__)

REASON = "the server stopped while the query ran (charged; no answer)"


def horizon_s(wall_clock_s: float) -> float:
    """How long a query row may say ``running`` before it is certainly orphaned."""
    return wall_clock_s * 2 + 30


def fail_orphaned(session: Session, *, wall_clock_s: float) -> list[int]:
    """Mark failed (and audit) every query run older than the horizon still ``running``."""
    cutoff = utcnow() - timedelta(seconds=horizon_s(wall_clock_s))
    q = select(QueryRun).where(QueryRun.status == "running", QueryRun.created_at < cutoff).with_for_update()
    done: list[int] = []
    for run in session.execute(q).scalars().all():
        run.status, run.error, run.finished_at = "failed", REASON, utcnow()
        audit.record(
            session,
            None,
            "query.failed",
            f"project:{run.project_id}",
            query_id=run.id,
            sql=run.sql[:4000],
            code="server_stopped",
            reason=REASON,
            epsilon_spent=run.epsilon_spent,
        )
        done.append(run.id)
    return done


class StaleQueryRuns(Periodic):
    """Every ``interval_s``, gives orphaned query runs their outcome (see the module docstring)."""

    def __init__(
        self,
        tx: Callable[[], AbstractContextManager[Session]],
        *,
        wall_clock_s: float,
        interval_s: float = 10.0,
    ) -> None:
        super().__init__()
        self.tx, self.wall_clock_s, self.interval_s = tx, wall_clock_s, interval_s

    thread_name = "countylab-stale-queries"

    def interval_s_now(self) -> float:
        return self.interval_s

    def run_once(self) -> list[int]:
        with self.tx() as s:
            done = fail_orphaned(s, wall_clock_s=self.wall_clock_s)
        if done:
            log.warning(
                "recorded %d DP query run(s) orphaned by a stopped server as failed: %s", len(done), done
            )
        return done
