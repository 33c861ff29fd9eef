"""Signed checkpoints of the audit chain head, written to the witness now and then.

The hash chain alone convicts nobody who can write the database: they can rewrite an event
and recompute every hash after it.  A checkpoint signs "event N had hash H" with an Ed25519
key the database owner cannot read, and lands in a witness they cannot rewrite; from then on
any rewrite of events up to N, or removal of events, fails ``audit verify``.  What stays
undetectable is a rewrite of the events since the newest checkpoint, so the interval bounds
that window (``audit_checkpoint_interval_s``, 300 s by default).

Before signing, the writer checks the events appended since the previous checkpoint against
that checkpoint's head, so a tampered chain is refused, never blessed with a fresh signature.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from countylab.audit import keys
from countylab.audit.log import GENESIS, check_segment, recompute
from countylab.audit.witness import FORMAT_VERSION, GENESIS_LINE, Checkpoint, Witness, line_digest
from countylab.config import Settings
from countylab.errors import UserError
from countylab.storage.db import transaction
from countylab.storage.models import AuditEvent, AuditHead

log = logging.getLogger(__name__)


class ChainTampered(UserError):
    """The chain no longer extends the last signed checkpoint: nothing is signed."""

    code = "audit_tampered"


def key_path(settings: Settings) -> Path:
    return settings.audit_key_file or settings.data_dir / "audit" / "checkpoint.key"


def witness_path(settings: Settings) -> Path:
    return settings.audit_witness_dir or settings.data_dir / "audit-witness"


def _extends_last(session: Session, last: Checkpoint, head: AuditHead) -> None:
    """Refuse unless the chain still holds the last checkpoint and links on to the head."""
    if head.last_id < last.event_id:
        raise ChainTampered(
            f"审计日志只有 {head.last_id} 条事件，少于上一个检查点（第 {last.seq} 个）记录的 {last.count} 条",
            f"The audit log has {head.last_id} events, fewer than the {last.count} of checkpoint {last.seq}",
        )
    if last.event_id:
        ev = session.get(AuditEvent, last.event_id)
        if ev is None or ev.hash != last.head or recompute(ev) != last.head:
            raise ChainTampered(
                f"第 {last.event_id} 号事件与检查点 {last.seq} 签名的哈希不符",
                f"Event {last.event_id} no longer hashes to the head signed in checkpoint {last.seq}",
            )
    elif last.head != GENESIS:
        raise ChainTampered("检查点的起始哈希有误", "The checkpoint of the empty log has a wrong head")
    segment = check_segment(session, after_id=last.event_id, after_hash=last.head, upto_id=head.last_id)
    if not segment.ok or segment.last_hash != head.last_hash:
        where = segment.first_bad_id or head.last_id
        raise ChainTampered(
            f"自检查点 {last.seq} 以来的审计链在第 {where} 号事件处断开",
            f"The audit chain since checkpoint {last.seq} is broken at event {where}: "
            f"{segment.problem or 'head does not match'}",
        )


def _check_ours(key: Ed25519PrivateKey, last: Checkpoint) -> None:
    public = key.public_key()
    if last.key_id != keys.key_id(public) or not keys.signature_ok(public, last.sig, last.body()):
        raise ChainTampered(
            f"见证的最后一个检查点（第 {last.seq} 个）不是用本实验室的签名密钥签的：见证被改动，或密钥被更换",
            f"The witness's last checkpoint ({last.seq}) is not signed by this lab's key: the witness was "
            "edited, or the key file was replaced",
        )


def write_checkpoint(
    sessions: sessionmaker[Session],
    key: Ed25519PrivateKey | Callable[[], Ed25519PrivateKey],
    witness: Witness,
    *,
    now: datetime | None = None,
) -> tuple[Checkpoint, bool]:
    """Sign the current head into the witness unless it is already there.

    Returns the newest checkpoint and whether this call wrote it.  Safe to run from several
    processes at once: the witness lock makes read-compare-append one step.  ``key`` may be a
    loader, called only when there is something to sign: a key file never exists without a
    checkpoint in the witness (``verify`` treats that as a removed witness).
    """
    with witness.locked():
        last_line = witness.last()
        last = last_line.checkpoint if last_line is not None else None
        if last is not None:  # the line we link to must be ours: never extend a forged checkpoint
            if callable(key):
                key = key()
            _check_ours(key, last)
        with transaction(sessions) as session:
            head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
            if last is not None:
                _extends_last(session, last, head)
                if head.last_id == last.event_id:
                    return last, False
            else:
                segment = check_segment(session, after_id=0, after_hash=GENESIS, upto_id=head.last_id)
                if not segment.ok or segment.last_hash != head.last_hash:
                    raise ChainTampered(
                        f"审计链在第 {segment.first_bad_id or head.last_id} 号事件处断开，不签第一个检查点",
                        f"The audit chain is broken at event {segment.first_bad_id or head.last_id}; "
                        "the first checkpoint is not signed",
                    )
            event_id, head_hash = head.last_id, head.last_hash
        if callable(key):
            key = key()
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        unsigned = Checkpoint(
            v=FORMAT_VERSION,
            seq=(last.seq + 1) if last is not None else 1,
            event_id=event_id,
            head=head_hash,
            count=event_id,
            ts=moment.isoformat(timespec="microseconds"),
            key_id=keys.key_id(key.public_key()),
            prev=line_digest(last_line.text) if last_line is not None else GENESIS_LINE,
        )
        signed = replace(unsigned, sig=key.sign(unsigned.body()).hex())
        witness.append(signed)
        return signed, True


class CheckpointService:
    """Writes a checkpoint every ``interval_s`` when the head moved, and one more on ``stop()``.

    Registered by the composition root as a background service; ``run_once`` is what the CLI
    command ``countylab audit checkpoint`` calls.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        key_file: Path,
        witness_dir: Path,
        interval_s: float = 300.0,
    ) -> None:
        self.sessions = sessions
        self.key_file = key_file
        self.witness = Witness(witness_dir)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings, sessions: sessionmaker[Session]) -> CheckpointService:
        return cls(
            sessions,
            key_file=key_path(settings),
            witness_dir=witness_path(settings),
            interval_s=settings.audit_checkpoint_interval_s,
        )

    def run_once(self, *, now: datetime | None = None) -> tuple[Checkpoint, bool]:
        return write_checkpoint(
            self.sessions, lambda: keys.load_or_create(self.key_file), self.witness, now=now
        )

    def _tick(self) -> None:
        try:
            checkpoint, wrote = self.run_once()
        except ChainTampered as exc:
            log.error("audit checkpoint refused: %s", exc.message_en)
        except Exception:  # noqa: BLE001 - a background thread must outlive a bad tick
            log.exception("audit checkpoint failed")
        else:
            if wrote:
                log.info("audit checkpoint %d at event %d", checkpoint.seq, checkpoint.event_id)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._tick()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="audit-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and sign the last head, so a clean shutdown leaves no unsigned tail."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._tick()
