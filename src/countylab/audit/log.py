"""Append-only audit log with a SHA-256 hash chain.

Each event stores the hash of the previous one and its own hash over a canonical JSON
encoding of every field.  Appends lock the single ``audit_head`` row (``SELECT … FOR UPDATE``
on PostgreSQL; SQLite transactions already start with ``BEGIN IMMEDIATE``), so the chain is
linear even under concurrent writers.  ``verify`` walks the chain and reports the first event
whose content, link or position no longer matches: an edited row, a deleted row, a forged
row or a truncated tail.  The database additionally refuses UPDATE/DELETE by trigger.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.storage.models import AuditEvent, AuditHead

if TYPE_CHECKING:
    from countylab.identity.access import Principal

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditRecord:
    id: int
    ts: str
    actor_id: int | None
    actor: str
    action: str
    target: str
    outcome: str
    details: dict[str, Any]
    hash: str


def canonical(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def event_hash(
    *,
    id: int,
    ts: str,
    actor_id: int | None,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    details: str,
    prev_hash: str,
) -> str:
    body = json.dumps(
        [id, ts, actor_id, actor, action, target, outcome, details, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def append(
    session: Session,
    *,
    actor_id: int | None,
    actor: str,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
    outcome: str = "ok",
) -> AuditRecord:
    """Add one event inside the caller's transaction: it commits or vanishes with the change."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    ts = datetime.now(UTC).isoformat(timespec="microseconds")
    body = canonical(details or {})
    new_id = head.last_id + 1
    digest = event_hash(
        id=new_id,
        ts=ts,
        actor_id=actor_id,
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        details=body,
        prev_hash=head.last_hash,
    )
    session.add(
        AuditEvent(
            id=new_id,
            ts=ts,
            actor_id=actor_id,
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            details=body,
            prev_hash=head.last_hash,
            hash=digest,
        )
    )
    head.last_id = new_id
    head.last_hash = digest
    session.flush()
    _track(new_id)
    return AuditRecord(new_id, ts, actor_id, actor, action, target, outcome, details or {}, digest)


def record(
    session: Session,
    actor: Principal | None,
    action: str,
    target: str = "",
    *,
    outcome: str = "ok",
    **details: Any,
) -> AuditRecord:
    """Audit what ``actor`` did, in the caller's transaction; ``None`` means the lab itself.

    The everyday form of :func:`append`: services already hold a ``Principal``, so they pass
    it whole instead of spelling out its id and name at every call (where they drifted).
    ``outcome`` is ``ok``, ``denied`` or ``failed``; every other keyword is a detail.
    """
    return append(
        session,
        actor_id=actor.user_id if actor is not None else None,
        actor=actor.username if actor is not None else "system",
        action=action,
        target=target,
        details=details,
        outcome=outcome,
    )


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    events: int
    first_bad_id: int | None = None
    problem: str = ""
    last_hash: str = GENESIS


def _rows(
    session: Session, *, after: int = 0, upto: int | None = None, batch: int = 5000
) -> Iterator[AuditEvent]:
    last = after
    while True:
        q = select(AuditEvent).where(AuditEvent.id > last).order_by(AuditEvent.id).limit(batch)
        if upto is not None:
            q = q.where(AuditEvent.id <= upto)
        rows = list(session.execute(q).scalars())
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def recompute(ev: AuditEvent) -> str:
    """The hash an event's stored content implies (what a checkpoint compares with)."""
    return event_hash(
        id=ev.id,
        ts=ev.ts,
        actor_id=ev.actor_id,
        actor=ev.actor,
        action=ev.action,
        target=ev.target,
        outcome=ev.outcome,
        details=ev.details,
        prev_hash=ev.prev_hash,
    )


def check_segment(session: Session, *, after_id: int, after_hash: str, upto_id: int | None) -> VerifyReport:
    """Walk events ``after_id+1 … upto_id`` (or the end), starting from the trusted ``after_hash``.

    ``events`` counts the events walked; on success ``problem`` is empty and the last hash is
    the one of event ``upto_id`` (read it with :func:`segment_end`).  Checkpoints use this to
    check only what was appended since the last signed head before signing a new one.
    """
    prev = after_hash
    expected_id = after_id + 1
    count = 0
    for ev in _rows(session, after=after_id, upto=upto_id):
        if ev.id != expected_id:
            return VerifyReport(False, count, expected_id, "missing event (deleted row)")
        if ev.prev_hash != prev:
            return VerifyReport(False, count, ev.id, "link to previous event broken")
        if recompute(ev) != ev.hash:
            return VerifyReport(False, count, ev.id, "content does not match its hash (edited)")
        prev = ev.hash
        expected_id += 1
        count += 1
    if upto_id is not None and expected_id != upto_id + 1:
        return VerifyReport(False, count, expected_id, "missing event (deleted row)")
    return VerifyReport(True, count, None, "", last_hash=prev)


def verify(session: Session) -> VerifyReport:
    """Walk the whole chain in id order; report the first event that does not check out."""
    report = check_segment(session, after_id=0, after_hash=GENESIS, upto_id=None)
    if not report.ok:
        return report
    count, prev = report.events, report.last_hash
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    if head.last_id != count or head.last_hash != prev:
        return VerifyReport(False, count, count + 1, "chain head does not match the last event (truncated)")
    return VerifyReport(True, count, last_hash=prev)


def to_record(ev: AuditEvent) -> AuditRecord:
    return AuditRecord(
        ev.id, ev.ts, ev.actor_id, ev.actor, ev.action, ev.target, ev.outcome, json.loads(ev.details), ev.hash
    )


def recent(
    session: Session,
    *,
    limit: int = 100,
    before_id: int | None = None,
    action_prefix: str | None = None,
    actor: str | None = None,
) -> list[AuditRecord]:
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id:
        q = q.where(AuditEvent.id < before_id)
    if action_prefix:
        q = q.where(AuditEvent.action.startswith(action_prefix))
    if actor:
        q = q.where(AuditEvent.actor == actor)
    return [to_record(ev) for ev in session.execute(q).scalars()]


# -- per-request accounting (used by the web layer's strict-audit guard) ----------------------

_request_events: ContextVar[list[int] | None] = ContextVar("countylab_audit_request_events", default=None)


def start_request_tracking() -> list[int]:
    """Begin counting events appended in this request; returns the live list of their ids."""
    events: list[int] = []
    _request_events.set(events)
    return events


def note_request_event(event_id: int) -> None:
    """Count an event another thread wrote on behalf of the current request."""
    _track(event_id)


def _track(event_id: int) -> None:
    events = _request_events.get()
    if events is not None:
        events.append(event_id)
