"""The answer cache with single-flight claims: identical concurrent queries are charged once.

A query's plan fingerprint names its answer.  In the same transaction as the charge, the
query *claims* the fingerprint by inserting ``{"pending": true}`` into ``query_answers``
(unique per project and fingerprint; ``ON CONFLICT DO NOTHING``).  The database decides who
wins: PostgreSQL makes a second inserter wait on the unique index until the first commits,
SQLite serialises writers.  The loser charges nothing and waits for the winner's answer; if the
winner fails, its claim is removed and a waiter may claim in turn.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from countylab.privacy.ledgers import aware
from countylab.storage.models import utcnow
from countylab.storage.privacy_models import CachedAnswer

PENDING: dict[str, Any] = {"pending": True}


def is_pending(answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get("pending") is True and "rows" not in answer


def lookup(session: Session, project_id: int, fingerprint: str) -> CachedAnswer | None:
    return session.execute(
        select(CachedAnswer).where(
            CachedAnswer.project_id == project_id, CachedAnswer.fingerprint == fingerprint
        )
    ).scalar_one_or_none()


def claim(session: Session, project_id: int, fingerprint: str, query_id: int) -> bool:
    """Insert the pending claim; False when another query holds (or answered) the fingerprint."""
    values = {
        "project_id": project_id,
        "fingerprint": fingerprint,
        "answer": PENDING,
        "query_id": query_id,
        "created_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = ins(CachedAnswer).values(**values).on_conflict_do_nothing().returning(CachedAnswer.id)
    return session.execute(stmt).scalar_one_or_none() is not None


def fulfil(
    session: Session, project_id: int, fingerprint: str, query_id: int, answer: dict[str, Any]
) -> None:
    session.execute(
        update(CachedAnswer)
        .where(
            CachedAnswer.project_id == project_id,
            CachedAnswer.fingerprint == fingerprint,
            CachedAnswer.query_id == query_id,
        )
        .values(answer=answer)
        .execution_options(synchronize_session=False)
    )


def release_claim(session: Session, project_id: int, fingerprint: str, query_id: int | None) -> None:
    """Drop a pending claim (its query failed, or it is stale) so a waiter can try."""
    q = delete(CachedAnswer).where(
        CachedAnswer.project_id == project_id, CachedAnswer.fingerprint == fingerprint
    )
    if query_id is not None:
        q = q.where(CachedAnswer.query_id == query_id)
    session.execute(q.execution_options(synchronize_session=False))


def stale(row: CachedAnswer, max_age_s: float) -> bool:
    """A claim older than a request's whole wall clock belongs to a crashed server."""
    return utcnow() - aware(row.created_at) > timedelta(seconds=max_age_s)
