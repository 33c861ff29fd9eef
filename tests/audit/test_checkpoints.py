"""Signed checkpoints: written only when the head moved, once under concurrent writers, checked by verify."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from countylab import audit
from countylab.audit import keys
from countylab.audit.checkpoints import CheckpointService, key_path, witness_path
from countylab.audit.verifier import verify_with_witness
from countylab.audit.witness import Witness
from countylab.identity.access import SYSTEM, Principal
from countylab.identity.roles import Role
from countylab.storage.models import AuditHead


def _fill(lab, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        with lab.tx() as s:
            audit.record(s, None, f"test.{i}", f"t:{i}", i=i)


def _service(lab) -> CheckpointService:
    return CheckpointService.from_settings(lab.settings, lab.read_sessions)


def _verdict(lab):
    trusted = keys.trusted_public_key(lab.settings.audit_public_key, key_path(lab.settings))
    with lab.read() as s:
        return verify_with_witness(s, Witness(witness_path(lab.settings)), trusted)


def test_checkpoint_signs_the_head_once_per_move(any_lab):
    service = _service(any_lab)
    first, wrote = service.run_once()
    assert wrote and first.seq == 1 and first.event_id == 0 and first.head == audit.log.GENESIS
    _fill(any_lab, 3)
    second, wrote = service.run_once()
    assert wrote and (second.seq, second.event_id, second.count) == (2, 3, 3)
    again, wrote = service.run_once()
    assert not wrote and again == second  # the head did not move: nothing new
    with any_lab.read() as s:
        head = s.execute(select(AuditHead)).scalar_one()
    assert second.head == head.last_hash
    verdict = _verdict(any_lab)
    assert verdict.ok, verdict.findings
    assert verdict.checkpoints == 2 and verdict.events == 3


def test_key_file_is_private_and_never_in_the_witness(lab):
    _fill(lab, 1)
    _service(lab).run_once()
    path = key_path(lab.settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    private_pem = path.read_text()
    pub_hex = keys.public_path(path).read_text().strip()
    assert len(pub_hex) == 64
    for f in Witness(witness_path(lab.settings)).files():
        text = f.read_text()
        assert "PRIVATE" not in text and private_pem.splitlines()[1] not in text
        line = json.loads(text.splitlines()[0])
        assert set(line) == {"v", "seq", "event_id", "head", "count", "ts", "key_id", "prev", "sig"}


def test_one_file_a_day_linked_across_days(lab):
    service = _service(lab)
    _fill(lab, 1)
    service.run_once(now=datetime(2026, 12, 4, 23, 59, tzinfo=UTC))
    _fill(lab, 1, start=1)
    service.run_once(now=datetime(2026, 12, 5, 0, 1, tzinfo=UTC))
    names = [p.name for p in Witness(witness_path(lab.settings)).files()]
    assert names == ["checkpoints-2026-12-04.jsonl", "checkpoints-2026-12-05.jsonl"]
    assert _verdict(lab).ok


def test_concurrent_writers_never_fork_or_repeat(lab):
    """Several server processes share a witness: each head is signed once, the sequence stays linear."""
    _fill(lab, 5)
    services = [_service(lab) for _ in range(4)]
    results: list[bool] = []
    errors: list[BaseException] = []

    def run(svc: CheckpointService) -> None:
        try:
            for _ in range(5):
                results.append(svc.run_once()[1])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(svc,)) for svc in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results.count(True) == 1
    lines = [wl.checkpoint for wl in Witness(witness_path(lab.settings)).lines()]
    assert [cp.seq for cp in lines if cp] == [1]
    assert _verdict(lab).ok


_WRITER = """
import sys
from pathlib import Path
from sqlalchemy import select

from countylab import audit
from countylab.audit.checkpoints import CheckpointService
from countylab.config import Settings
from countylab.storage.all_models import load_all
from countylab.storage.db import make_engine, make_session_factory, transaction

load_all()
settings = Settings(data_dir=Path(sys.argv[1]))
engine = make_engine(settings.resolved_database_url)
sessions = make_session_factory(engine)
service = CheckpointService.from_settings(settings, sessions)
wrote = 0
for i in range(int(sys.argv[2])):
    with transaction(sessions) as s:
        audit.record(s, None, "proc", str(i))
    wrote += service.run_once()[1]
engine.dispose()
print(wrote)
"""


def test_separate_processes_share_one_key_and_one_linear_witness(lab):
    """Three server processes start on a lab with no key yet: one key, one linear witness."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(lab.settings.data_dir), "6"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    written = sum(int(o.strip()) for o in outputs)
    cps = [wl.checkpoint for wl in Witness(witness_path(lab.settings)).lines()]
    assert all(cps) and [cp.seq for cp in cps if cp] == list(range(1, written + 1))
    assert len({cp.key_id for cp in cps if cp}) == 1
    verdict = _verdict(lab)
    assert verdict.ok, verdict.findings
    assert verdict.events == 18


def test_background_service_checkpoints_on_interval_and_at_stop(tmp_path):
    from tests.support import build_lab

    lab = build_lab(tmp_path, audit_checkpoint_interval_s=0.05)
    try:
        service = _service(lab)
        service.start()
        _fill(lab, 2)
        deadline = datetime.now(UTC).timestamp() + 10
        while datetime.now(UTC).timestamp() < deadline:
            last = Witness(witness_path(lab.settings)).last()
            if last and last.checkpoint and last.checkpoint.event_id == 2:
                break
            threading.Event().wait(0.05)
        else:
            raise AssertionError("no checkpoint of event 2 within 10 s")
        _fill(lab, 1, start=2)
        service.stop()  # the final tick signs the tail
        last = Witness(witness_path(lab.settings)).last()
        assert last and last.checkpoint and last.checkpoint.event_id == 3
        assert _verdict(lab).ok
    finally:
        lab.close()


def test_record_takes_a_principal_and_keeps_outcome(lab):
    alice = Principal(user_id=7, username="alice", roles=frozenset({Role.developer}))
    with lab.tx() as s:
        denied = audit.record(s, alice, "thing.do", "thing:1", outcome="denied", reason="no")
        system = audit.record(s, None, "thing.tick")
        explicit = audit.record(s, SYSTEM, "thing.tick")
    assert (denied.actor_id, denied.actor, denied.outcome, denied.details) == (
        7,
        "alice",
        "denied",
        {"reason": "no"},
    )
    assert (system.actor_id, system.actor, system.outcome, system.target) == (None, "system", "ok", "")
    assert explicit.actor == "system"
    with lab.read() as s:
        assert audit.verify(s).ok


def test_public_key_command_pins_a_key_that_verifies(capsys, tmp_path):
    """`audit public-key` on a fresh lab: a key, a first checkpoint, and verify passes under the pin."""
    from countylab.cli import main as cli_main
    from tests.support import build_lab

    lab = build_lab(tmp_path)
    try:
        _fill(lab, 2)
    finally:
        lab.close()
    data = str(tmp_path / "lab-data")
    assert cli_main(["audit", "public-key", "--data-dir", data]) == 0
    pinned = capsys.readouterr().out.strip()
    assert len(pinned) == 64 and int(pinned, 16) >= 0
    assert cli_main(["audit", "verify", "--data-dir", data, "--public-key", pinned]) == 0
    assert "2 events, 1 signed checkpoints (last at event 2)" in capsys.readouterr().out
    other = keys.public_hex(Ed25519PrivateKey.generate().public_key())
    assert cli_main(["audit", "verify", "--data-dir", data, "--public-key", other]) == 1
    assert "[signature]" in capsys.readouterr().err


def test_a_refused_first_checkpoint_creates_no_key(lab):
    """A chain already broken before any checkpoint is not signed, and leaves no key behind."""
    import pytest
    from sqlalchemy import text

    from countylab.audit.checkpoints import ChainTampered

    _fill(lab, 3)
    with lab.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
        conn.execute(text("UPDATE audit_events SET actor = 'x' WHERE id = 2"))
    with pytest.raises(ChainTampered):
        _service(lab).run_once()
    assert not key_path(lab.settings).exists()
    assert not Witness(witness_path(lab.settings)).files()
