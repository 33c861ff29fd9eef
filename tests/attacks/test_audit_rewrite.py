"""An insider who owns the database rewrites the audit log; ``audit verify`` still convicts them.

The attacker can do anything to the database (SQLite file owner, PostgreSQL table owner):
drop the append-only triggers, edit an event, recompute every hash after it and the head row
so the chain is self-consistent again.  What they cannot do is read the checkpoint signing key
or rewrite the witness.  Each attack below first shows that the plain hash chain is fooled,
then that the verification against the signed checkpoints is not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, text

from countylab import audit
from countylab.audit import keys
from countylab.audit.checkpoints import ChainTampered, CheckpointService, key_path, witness_path
from countylab.audit.log import GENESIS, event_hash
from countylab.audit.verifier import Verdict, verify_with_witness
from countylab.audit.witness import Witness, line_digest
from countylab.cli import main as cli_main
from tests.support import build_lab


def _fill(lab, n: int, start: int) -> None:
    for i in range(start, start + n):
        with lab.tx() as s:
            audit.record(s, None, f"test.{i}", f"t:{i}", i=i)


def _staged(lab) -> None:
    """Events 1–4 signed, 5–7 signed, event 8 an unsigned tail."""
    service = CheckpointService.from_settings(lab.settings, lab.read_sessions)
    _fill(lab, 4, 1)
    assert service.run_once()[1]
    _fill(lab, 3, 5)
    assert service.run_once()[1]
    _fill(lab, 1, 8)


def _verdict(lab, pinned: str = "") -> Verdict:
    trusted = keys.trusted_public_key(pinned or lab.settings.audit_public_key, key_path(lab.settings))
    with lab.read() as s:
        return verify_with_witness(s, Witness(witness_path(lab.settings)), trusted)


# -- what the database owner does --------------------------------------------------------------


def _lift_guard(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_update")
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_delete")
    else:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")


def _rehash(conn: Connection, start: int) -> None:
    """Recompute the chain from event ``start`` on, and the head: the chain is consistent again."""
    prev = conn.execute(text("SELECT hash FROM audit_events WHERE id = :p"), {"p": start - 1}).scalar()
    prev = prev or GENESIS
    rows = conn.execute(
        text("SELECT * FROM audit_events WHERE id >= :s ORDER BY id"), {"s": start}
    ).mappings()
    for r in list(rows):
        digest = event_hash(
            id=r["id"],
            ts=r["ts"],
            actor_id=r["actor_id"],
            actor=r["actor"],
            action=r["action"],
            target=r["target"],
            outcome=r["outcome"],
            details=r["details"],
            prev_hash=prev,
        )
        conn.execute(
            text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :i"),
            {"p": prev, "h": digest, "i": r["id"]},
        )
        prev = digest
    last = conn.execute(text("SELECT max(id) FROM audit_events")).scalar() or 0
    conn.execute(
        text("UPDATE audit_head SET last_id = :i, last_hash = :h WHERE id = 1"), {"i": last, "h": prev}
    )


def edit_and_recompute(conn: Connection) -> None:
    conn.execute(
        text("UPDATE audit_events SET actor = 'nobody', details = :d WHERE id = 2"), {"d": '{"i":99}'}
    )
    _rehash(conn, 2)


def delete_tail(conn: Connection) -> None:
    conn.execute(text("DELETE FROM audit_events WHERE id >= 6"))
    _rehash(conn, 6)


def truncate_and_rebuild(conn: Connection) -> None:
    conn.execute(text("DELETE FROM audit_events"))
    ts = datetime.now(UTC).isoformat(timespec="microseconds")
    for i in range(1, 9):
        conn.execute(
            text(
                "INSERT INTO audit_events (id, ts, actor_id, actor, action, target, outcome, details, "
                "prev_hash, hash) VALUES (:i, :ts, NULL, 'system', :a, :t, 'ok', '{}', :ph, :h)"
            ),
            {"i": i, "ts": ts, "a": f"test.{i}", "t": f"t:{i}", "ph": f"{i:064x}", "h": f"{i + 100:064x}"},
        )
    _rehash(conn, 1)


def replace_whole_table(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("CREATE TABLE audit_copy AS SELECT * FROM audit_events")
    else:
        conn.exec_driver_sql("CREATE TABLE audit_copy (LIKE audit_events INCLUDING ALL)")
        conn.exec_driver_sql("INSERT INTO audit_copy SELECT * FROM audit_events")
    conn.exec_driver_sql("DROP TABLE audit_events" + (" CASCADE" if conn.dialect.name != "sqlite" else ""))
    conn.exec_driver_sql("ALTER TABLE audit_copy RENAME TO audit_events")
    conn.execute(text("UPDATE audit_events SET target = 'elsewhere' WHERE id = 3"))
    _rehash(conn, 3)


ATTACKS: dict[str, tuple[Callable[[Connection], None], set[str]]] = {
    "edit_and_recompute": (edit_and_recompute, {"checkpoint"}),
    "delete_tail": (delete_tail, {"checkpoint", "count"}),
    "truncate_and_rebuild": (truncate_and_rebuild, {"checkpoint"}),
    "replace_whole_table": (replace_whole_table, {"checkpoint"}),
}


def _attack(lab, fn: Callable[[Connection], None]) -> None:
    with lab.engine.begin() as conn:
        _lift_guard(conn)
        fn(conn)


# -- the tests ----------------------------------------------------------------------------------


def test_an_untouched_lab_verifies(any_lab):
    _staged(any_lab)
    verdict = _verdict(any_lab)
    assert verdict.ok, verdict.findings
    assert (verdict.events, verdict.checkpoints) == (8, 2)
    assert verdict.last is not None and verdict.last.event_id == 7


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_rewritten_chain_fails_against_the_checkpoints(any_lab, name):
    fn, expected = ATTACKS[name]
    _staged(any_lab)
    _attack(any_lab, fn)
    with any_lab.read() as s:
        assert audit.verify(s).ok, "the attack should fool the plain hash chain"
    verdict = _verdict(any_lab)
    assert not verdict.ok
    assert {f.check for f in verdict.findings} == expected, verdict.findings
    # and the checkpoint writer refuses to bless the rewritten chain with a new signature
    _fill(any_lab, 1, 100)
    with pytest.raises(ChainTampered):
        CheckpointService.from_settings(any_lab.settings, any_lab.read_sessions).run_once()


def test_a_checkpoint_forged_without_the_key_fails(any_lab):
    """The attacker rewrites the chain and appends a checkpoint of the new head, signed with their key."""
    _staged(any_lab)
    _attack(any_lab, edit_and_recompute)
    witness = Witness(witness_path(any_lab.settings))
    last = witness.last()
    assert last is not None and last.checkpoint is not None
    with any_lab.read() as s:
        head = s.execute(text("SELECT last_id, last_hash FROM audit_head")).one()
    mallory = Ed25519PrivateKey.generate()
    forged = replace(
        last.checkpoint,
        seq=last.checkpoint.seq + 1,
        event_id=head.last_id,
        count=head.last_id,
        head=head.last_hash,
        ts=datetime.now(UTC).isoformat(timespec="microseconds"),
        prev=line_digest(last.text),
        key_id=keys.key_id(mallory.public_key()),
    )
    witness.append(replace(forged, sig=mallory.sign(forged.body()).hex()))
    # the same, but claiming the lab's key id
    forged2 = replace(forged, seq=forged.seq + 1, key_id=last.checkpoint.key_id)
    witness.append(replace(forged2, sig=mallory.sign(forged2.body()).hex()))
    verdict = _verdict(any_lab)
    checks = [(f.check, f.where) for f in verdict.findings]
    assert ("signature", witness.files()[-1].name + ":3") in checks
    assert ("signature", witness.files()[-1].name + ":4") in checks
    assert "checkpoint" in {c for c, _ in checks}
    # the lab's own writer refuses to link a new checkpoint to a line it did not sign
    with pytest.raises(ChainTampered, match="not signed by this lab's key"):
        CheckpointService.from_settings(any_lab.settings, any_lab.read_sessions).run_once()


def test_a_replaced_key_file_signs_nothing(lab):
    """Someone swaps the key file: the writer refuses to extend a witness signed with the old key."""
    _staged(lab)
    key_path(lab.settings).unlink()
    with pytest.raises(ChainTampered, match="key file was replaced"):
        CheckpointService.from_settings(lab.settings, lab.read_sessions).run_once()
    assert _verdict(lab).ok  # the .pub beside it is still the old key: the witness checks out


def test_an_edited_witness_line_fails(lab):
    """Someone edits the signed head in the witness to match the rewritten chain."""
    _staged(lab)
    _attack(lab, edit_and_recompute)
    with lab.read() as s:
        new_hash = s.execute(text("SELECT hash FROM audit_events WHERE id = 7")).scalar_one()
    path = Witness(witness_path(lab.settings)).files()[-1]
    lines = path.read_text().splitlines()
    old_hash = Witness(witness_path(lab.settings)).last().checkpoint.head  # type: ignore[union-attr]
    lines[1] = lines[1].replace(old_hash, new_hash)
    path.write_text("\n".join(lines) + "\n")
    findings = _verdict(lab).findings
    assert ("signature", f"{path.name}:2") in [(f.check, f.where) for f in findings]


def test_a_removed_witness_line_or_witness_fails(lab):
    _staged(lab)
    path = Witness(witness_path(lab.settings)).files()[-1]
    lines = path.read_text().splitlines()
    path.write_text(lines[1] + "\n")  # checkpoint 1 removed
    assert "signature" in {f.check for f in _verdict(lab).findings}
    path.unlink()  # the whole witness gone, while the key says checkpoints were written
    assert "signature" in {f.check for f in _verdict(lab).findings}


def test_a_swapped_key_and_resigned_witness_fail_under_the_pinned_key(lab):
    """With write access to both key folder and witness, only a pinned public key still convicts."""
    _staged(lab)
    pinned = keys.public_path(key_path(lab.settings)).read_text().strip()
    _attack(lab, edit_and_recompute)
    key_path(lab.settings).unlink()
    keys.public_path(key_path(lab.settings)).unlink()
    for f in Witness(witness_path(lab.settings)).files():
        f.unlink()
    CheckpointService.from_settings(
        lab.settings, lab.read_sessions
    ).run_once()  # a fresh key, a fresh witness
    assert _verdict(lab).ok  # fooled when trusting the key file beside the lab …
    verdict = _verdict(lab, pinned=pinned)  # … not when the auditor pinned the public key
    assert not verdict.ok and {f.check for f in verdict.findings} == {"signature"}


def test_cli_verify_names_the_failed_check_and_exits_1(capsys, tmp_path):
    lab = build_lab(tmp_path)
    try:
        _staged(lab)
    finally:
        lab.close()
    data = str(tmp_path / "lab-data")
    assert cli_main(["audit", "checkpoint", "--data-dir", data]) == 0
    out = capsys.readouterr().out
    assert "checkpoint 3 signed: event 8" in out
    assert cli_main(["audit", "verify", "--data-dir", data]) == 0
    assert "intact" in capsys.readouterr().out
    lab = build_lab(tmp_path)
    try:
        _attack(lab, edit_and_recompute)
    finally:
        lab.close()
    assert cli_main(["audit", "verify", "--data-dir", data]) == 1
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert "[checkpoint] event 4 no longer hashes to the head signed in checkpoint 1" in err
    assert "第 4 号事件与检查点 1" in err
    assert "intact" not in captured.out


def test_the_api_and_the_audit_page_report_the_rewrite(lab):
    from tests.support import api_client, create_user

    admin = create_user(lab, "auditor", ["admin"])
    _staged(lab)
    client = api_client(lab, admin)
    assert client.get("/api/audit/verify").json()["ok"] is True
    _attack(lab, edit_and_recompute)
    body = client.get("/api/audit/verify").json()
    assert body["ok"] is False
    first = body["first_bad_id"]  # the first signed position after the edited event 2
    assert first > 2 and body["problem"].startswith(f"[checkpoint] event {first} no longer hashes")


def test_the_audit_page_names_a_witness_failure_without_an_event(lab):
    """A deleted witness breaks no event of the chain: the page says the log failed verification
    and why, instead of pointing at a non-existent "event None"."""
    from fastapi.testclient import TestClient

    from countylab.web.app import create_app
    from tests.support import browser_login, create_user

    create_user(lab, "auditor2", ["admin"])
    _staged(lab)
    for path in Witness(witness_path(lab.settings)).files():
        path.unlink()
    client = TestClient(create_app(lab))
    browser_login(client, "auditor2")
    page = client.get("/audit")
    assert page.status_code == 200
    verdict = page.text.split("✘", 1)[1].split("</p>", 1)[0]
    assert "审计日志未通过校验" in verdict and "None" not in verdict, verdict
