"""The gateway's records: query history rows (``query_runs``) and their audit events.

Every query ends as exactly one row and one audit event: ``answered``/``cached``
(``query.run``), ``refused`` (``query.refused``, nothing charged) or ``failed``
(``query.failed``, charged).  A failure's *analyst-facing* answer is always the same; the
record keeps the real reason for the steward.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from countylab import audit
from countylab.errors import CountylabError
from countylab.identity.access import Principal
from countylab.privacy.result import DPResult
from countylab.storage.models import Project, utcnow
from countylab.storage.privacy_models import QueryRun

MAX_SQL = 20_000


def released(result: DPResult, datasets: Sequence[str]) -> dict[str, Any]:
    """The JSON stored in the cache and sent out: intervals per noisy column, JSON-safe values."""
    j = result.to_json()
    intervals: dict[str, list[Any]] = {}
    for ci, col in enumerate(j["columns"]):
        pairs = [row[ci] for row in j["intervals"]]
        if any(p is not None for p in pairs):
            intervals[col] = pairs
    safe: dict[str, Any] = json.loads(
        json.dumps(
            {
                "columns": j["columns"],
                "rows": j["rows"],
                "intervals": intervals,
                "notes": j["notes"],
                "suppressed": j["suppressed"],
                "datasets": list(datasets),
            },
            default=str,
            ensure_ascii=False,
        )
    )
    return safe


def start_run(s: Session, actor: Principal, req: Any, labels: Sequence[str], fingerprint: str) -> QueryRun:
    run = QueryRun(
        project_id=req.project_id,
        user_id=actor.user_id,
        username=actor.username,
        sql=req.sql,
        mode="dp",
        epsilon=float(req.epsilon or 0.0),
        delta=float(req.delta or 0.0),
        epsilon_spent=0.0,
        delta_spent=0.0,
        datasets=list(labels),
        fingerprint=fingerprint,
        status="running",
        cached=False,
        rows=0,
        suppressed=0,
        error="",
        created_at=utcnow(),
    )
    s.add(run)
    s.flush()
    return run


def finish_run(s: Session, actor: Principal, run_id: int, answer: Mapping[str, Any], status: str) -> None:
    run = s.get(QueryRun, run_id)
    assert run is not None
    run.status, run.finished_at = status, utcnow()
    run.rows, run.suppressed = len(answer.get("rows", [])), len(answer.get("suppressed", []))
    audit.record(
        s,
        actor,
        "query.run",
        f"project:{run.project_id}",
        query_id=run.id,
        sql=run.sql,
        mode=run.mode,
        status=status,
        epsilon_spent=0.0 if run.cached else run.epsilon_spent,
        delta_spent=0.0 if run.cached else run.delta_spent,
        cached=run.cached,
        datasets=run.datasets,
        rows=run.rows,
        suppressed=run.suppressed,
    )


def log_failure(s: Session, actor: Principal, req: Any, run_id: int, exc: BaseException) -> None:
    """A charged query failed: ``failed`` with the real reason kept for the steward, audited.

    The engine wraps every execution failure in one ``QueryFailed``; the record keeps the
    original (its ``__cause__``) so that a steward can tell a timeout from a bug."""
    if exc.__cause__ is not None and getattr(exc, "code", "") == "query_failed":
        exc = exc.__cause__
    reason = exc.message_en if isinstance(exc, CountylabError) else type(exc).__name__
    code = exc.code if isinstance(exc, CountylabError) else "error"
    run = s.get(QueryRun, run_id)
    if run is not None:
        run.status, run.error, run.finished_at = "failed", reason[:500], utcnow()
    audit.record(
        s,
        actor,
        "query.failed",
        f"project:{req.project_id}",
        query_id=run_id,
        sql=req.sql[:4000],
        code=code,
        reason=reason[:500],
        epsilon_spent=run.epsilon_spent if run else 0.0,
    )


def _safe_float(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return f if f == f and abs(f) < 1e300 else 0.0


def log_refusal(s: Session, actor: Principal, req: Any, exc: CountylabError) -> None:
    """A refused query: nothing charged; a history row (for members) and an audit event."""
    details = {k: v for k, v in exc.details.items() if isinstance(v, str | int | float | bool) or v is None}
    pid = req.project_id if isinstance(req.project_id, int) and 0 <= req.project_id < 2**63 else None
    project = s.get(Project, pid) if pid is not None else None
    sql = req.sql if isinstance(req.sql, str) else ""
    if project is not None and actor.user_id is not None and project.id in actor.project_ids:
        s.add(
            QueryRun(
                project_id=project.id,
                user_id=actor.user_id,
                username=actor.username,
                sql=sql[:MAX_SQL],
                mode=str(req.mode)[:10],
                epsilon=_safe_float(req.epsilon),
                delta=_safe_float(req.delta),
                epsilon_spent=0.0,
                delta_spent=0.0,
                datasets=[],
                fingerprint="",
                status="refused",
                cached=False,
                rows=0,
                suppressed=0,
                error=exc.message_en[:500],
                created_at=utcnow(),
                finished_at=utcnow(),
            )
        )
    audit.append(
        s,
        actor_id=actor.user_id,
        actor=actor.username,
        action="query.refused",
        target=f"project:{pid}",
        outcome="denied",
        details={
            "sql": sql[:4000],
            "mode": str(req.mode)[:10],
            "epsilon": _safe_float(req.epsilon),
            "code": exc.code,
            "reason": exc.message_en,
            **details,
        },
    )
