"""Feed pushes audited as periodic summaries, so machine traffic does not bury what people did.

A feed (the demo's traffic and air-quality feeds, any in-process source acting as
:func:`feed_principal`) pushes every few seconds; one ``dataset.push`` event per push filled the
audit page with thousands of identical rows a day and hid the grant or the export a steward was looking for.
Pushes by such a source are therefore tallied per dataset and per period (setting
``push_summary_period_s``, default 10 minutes) and audited as ONE ``dataset.push_summary`` event
per dataset per period: batches, rows, first and last batch key, first and last push time.
A push by a person (browser session, CLI, API token: a request that must show its own event)
stays an individual ``dataset.push`` event, as before.

Why nothing goes un-audited:

* the summary of a period is written by the group commit that first lands after the period
  ended, **in the same transaction** as that push's keys, so a summary and the pushes it closes
  commit or vanish together; the hash chain covers the summary like any other event;
* every batch's idempotency key is committed in ``push_keys`` (with its time) in the transaction
  that applied it, so the open period (kept in memory, at most one period long) is the only part
  a ``kill -9`` can drop from the audit log, and :func:`recover_unsummarised` finds exactly those
  keys again (keys after the dataset's last summary and not named by any individual push event)
  and writes them as a summary marked ``recovered`` at the next start;
* a clean stop (:meth:`PushSummaries.flush`) writes every open period at once.

Several server processes each keep their own tallies: each writes its own summary per period,
and the counts add up.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.identity.access import Principal
from countylab.identity.roles import Role
from countylab.storage.catalog_models import PushKey
from countylab.storage.models import AuditEvent

SUMMARY_ACTION = "dataset.push_summary"
log = logging.getLogger(__name__)
DEFAULT_PERIOD_S = 600.0


class _Push(Protocol):
    """What a summary needs of one applied push (``push_commit.PendingPush``)."""

    dataset_id: int
    key: str
    rows: int

    @property
    def actor(self) -> Any: ...


FEED_VIA = "feed"


def summarised(actor: Any) -> bool:
    """A feed, not a person: a source acting as :func:`feed_principal` (``via == "feed"``)."""
    return getattr(actor, "via", "") == FEED_VIA


def feed_principal(name: str = "demo-feed") -> Principal:
    """The principal of an in-process feed: may push into any dataset, audited by period.

    Not the lab's ``SYSTEM`` (whose pushes, such as recovery and tests, stay individual events).
    """
    return Principal(user_id=None, username=name, roles=frozenset({Role.admin}), via=FEED_VIA)


@dataclass(frozen=True)
class Tally:
    dataset_id: int
    actor_id: int | None
    actor: str
    period_start: datetime
    batches: int = 0
    rows: int = 0
    failures: int = 0
    first_key: str = ""
    last_key: str = ""
    first_at: datetime | None = None
    last_at: datetime | None = None

    def details(self, period_s: float, recovered: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "period_start": self.period_start.isoformat(timespec="seconds"),
            "period_end": (self.period_start + timedelta(seconds=period_s)).isoformat(timespec="seconds"),
            "batches": self.batches,
            "rows": self.rows,
            "failures": self.failures,
            "first_key": self.first_key,
            "last_key": self.last_key,
            "first_at": self.first_at.isoformat(timespec="seconds") if self.first_at else None,
            "last_at": self.last_at.isoformat(timespec="seconds") if self.last_at else None,
        }
        if recovered:
            out["recovered"] = True
        return out


class PushSummaries:
    """Open tallies of summarised pushes; the group committer plans, writes, then applies them.

    ``plan`` is pure (it returns the new tallies and the ones to write), so a transaction that
    rolls back leaves the tallies as they were: the pushes it carried were not applied either.
    """

    def __init__(
        self, period_s: float = DEFAULT_PERIOD_S, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.period_s = period_s
        self.clock = clock or (lambda: datetime.now(UTC))
        self._open: dict[tuple[int, str], Tally] = {}
        self._lock = threading.Lock()

    def _period_of(self, moment: datetime) -> datetime:
        seconds = int(self.period_s) or 1
        epoch = int(moment.timestamp())
        return datetime.fromtimestamp(epoch - epoch % seconds, UTC)

    def plan(self, items: Iterable[_Push]) -> tuple[dict[tuple[int, str], Tally], list[Tally]]:
        """(tallies after these pushes, closed tallies to write now) — nothing changed yet."""
        now = self.clock()
        current = self._period_of(now)
        with self._lock:
            state = dict(self._open)
        closed = [t for t in state.values() if t.period_start < current]
        for t in closed:
            del state[(t.dataset_id, t.actor)]
        for item in items:
            if not summarised(item.actor):
                continue
            slot = (item.dataset_id, item.actor.username)
            t = state.get(slot) or Tally(item.dataset_id, item.actor.user_id, item.actor.username, current)
            state[slot] = replace(
                t,
                batches=t.batches + 1,
                rows=t.rows + item.rows,
                first_key=t.first_key or item.key,
                last_key=item.key,
                first_at=t.first_at or now,
                last_at=now,
            )
        return state, closed

    def apply(self, state: dict[tuple[int, str], Tally]) -> None:
        with self._lock:
            self._open = state

    def failed(self, items: Iterable[_Push]) -> None:
        """Count pushes whose commit failed (each is also reported to its caller)."""
        now = self.clock()
        with self._lock:
            for item in items:
                if summarised(item.actor):
                    slot = (item.dataset_id, item.actor.username)
                    t = self._open.get(slot) or Tally(
                        item.dataset_id, item.actor.user_id, item.actor.username, self._period_of(now)
                    )
                    self._open[slot] = replace(t, failures=t.failures + 1)

    def record_failure(self, tx: Callable[[], Any], items: Iterable[_Push], error: BaseException) -> None:
        """A feed's push that failed to commit: counted in its period AND audited on its own.

        Written in a transaction of its own (the push's rolled back); if the database itself is
        what failed, this may fail too, and the count in the period's summary remains.
        """
        mine = [i for i in items if summarised(i.actor)]
        if not mine:
            return
        self.failed(mine)
        try:
            with tx() as s:
                for item in mine:
                    audit.append(
                        s,
                        actor_id=item.actor.user_id,
                        actor=item.actor.username,
                        action="dataset.push",
                        target=f"dataset:{item.dataset_id}",
                        details={
                            "rows": item.rows,
                            "batches": [{"key": item.key, "rows": item.rows}],
                            "error": type(error).__name__,
                        },
                        outcome="failed",
                    )
        except Exception:  # noqa: BLE001 - the caller already hears about the failure
            log.warning("could not audit a failed feed push", exc_info=True)

    def write(self, session: Session, closed: Iterable[Tally]) -> None:
        for t in closed:
            audit.append(
                session,
                actor_id=t.actor_id,
                actor=t.actor,
                action=SUMMARY_ACTION,
                target=f"dataset:{t.dataset_id}",
                details=t.details(self.period_s),
                outcome="ok" if t.failures == 0 else "failed",
            )

    def open_tallies(self) -> list[Tally]:
        with self._lock:
            return list(self._open.values())

    def flush(self, tx: Callable[[], Any]) -> int:
        """Write every open tally now (a clean stop); returns how many summaries were written."""
        with self._lock:
            pending, self._open = list(self._open.values()), {}
        if pending:
            with tx() as s:
                self.write(s, pending)
        return len(pending)

    def flush_due(self, tx: Callable[[], Any]) -> int:
        """Write the tallies whose period has ended (a feed that stopped pushing)."""
        state, closed = self.plan([])
        if closed:
            with tx() as s:
                self.write(s, closed)
            self.apply(state)
        return len(closed)


def recover_unsummarised(
    session: Session, dataset_id: int, actor: str = "demo-feed", period_s: float = DEFAULT_PERIOD_S
) -> Tally | None:
    """Write a ``recovered`` summary of the batches a killed process applied but never summarised.

    They are the dataset's committed push keys newer than its last summary's last push, less the
    keys an individual ``dataset.push`` event names.  Rows are not in ``push_keys``; the recovered
    summary counts batches (the rows are in the dataset's versions, which compaction builds from
    the very same files).  Returns the tally written, or None when nothing was missing.
    """
    last = session.execute(
        select(AuditEvent.details)
        .where(AuditEvent.action == SUMMARY_ACTION, AuditEvent.target == f"dataset:{dataset_id}")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    since: datetime | None = None
    if last is not None:  # where the last summary ended: the commit time of its last batch
        last_key = json.loads(last).get("last_key")
        since = session.execute(
            select(PushKey.created_at).where(PushKey.dataset_id == dataset_id, PushKey.key == last_key)
        ).scalar_one_or_none()
    q = select(PushKey.key, PushKey.created_at).where(PushKey.dataset_id == dataset_id)
    if since is not None:
        q = q.where(PushKey.created_at > since)
    keys = session.execute(q.order_by(PushKey.created_at)).all()
    if not keys:
        return None
    named: set[str] = set()
    events = select(AuditEvent.details).where(
        AuditEvent.action == "dataset.push",
        AuditEvent.target == f"dataset:{dataset_id}",
        AuditEvent.outcome == "ok",  # a failed push's key may have landed later, unsummarised
    )
    if since is not None:
        events = events.where(AuditEvent.ts > _aware(since).isoformat(timespec="microseconds"))
    for details in session.execute(events).scalars():
        named.update(b["key"] for b in json.loads(details).get("batches", []))
    missing = [(k, at) for k, at in keys if k not in named]
    if not missing:
        return None
    first_at, last_at = (_aware(missing[0][1]), _aware(missing[-1][1]))
    tally = Tally(
        dataset_id,
        None,
        actor,
        first_at,
        batches=len(missing),
        first_key=missing[0][0],
        last_key=missing[-1][0],
        first_at=first_at,
        last_at=last_at,
    )
    audit.append(
        session,
        actor_id=None,
        actor=actor,
        action=SUMMARY_ACTION,
        target=f"dataset:{dataset_id}",
        details={**tally.details(period_s, recovered=True), "rows": None},
    )
    return tally


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
