"""``audit verify``: the hash chain, checked against the signed checkpoints of the witness.

Four checks, each named in what it reports, so an auditor knows what broke and where:

- ``chain``: every event hashes to its stored hash and links to the one before (as before);
- ``signature``: every witness line is well-formed, signed by the trusted public key, and
  links to the line before it (no line removed, reordered or inserted);
- ``checkpoint``: the event at each checkpointed position still hashes to the signed head —
  this is what a database owner who recomputed the chain cannot pass;
- ``count``: the log holds at least as many events as the newest checkpoint counted (a
  deleted tail, or a table truncated and rebuilt shorter).

Only the witness lines and the public key are trusted; nothing the database says about
checkpoints is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from countylab.audit import keys
from countylab.audit.checkpoints import key_path, witness_path
from countylab.audit.log import GENESIS, VerifyReport, recompute, verify
from countylab.audit.witness import GENESIS_LINE, Checkpoint, Witness, WitnessLine, line_digest
from countylab.config import Settings
from countylab.storage.models import AuditEvent


@dataclass(frozen=True)
class Finding:
    check: str  # chain | signature | checkpoint | count | key
    where: str  # "event 12" or "checkpoints-2026-12-05.jsonl:3"
    zh: str
    en: str

    def message(self, lang: str = "zh-CN") -> str:
        return self.en if lang.startswith("en") else self.zh


@dataclass(frozen=True)
class Verdict:
    chain: VerifyReport
    events: int
    checkpoints: int  # lines whose signature checked out
    last: Checkpoint | None
    findings: tuple[Finding, ...]
    notes: tuple[Finding, ...] = ()  # worth saying, not a failure

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> VerifyReport:
        """The verdict in the shape of the chain's own report (what pages and the API show)."""
        if self.ok:
            return VerifyReport(True, self.events, last_hash=self.chain.last_hash)
        first = self.findings[0]
        bad = int(first.where.split(" ", 1)[1]) if first.where.startswith("event ") else None
        return VerifyReport(False, self.events, bad, f"[{first.check}] {first.en}")


def _check_lines(lines: list[WitnessLine], key: Ed25519PublicKey) -> tuple[list[WitnessLine], list[Finding]]:
    """Signatures and the line-to-line links; returns the lines that can be trusted."""
    good: list[WitnessLine] = []
    findings: list[Finding] = []
    expected_key = keys.key_id(key)
    prev_text: str | None = None
    prev_cp: Checkpoint | None = None
    for wl in lines:
        cp = wl.checkpoint
        if cp is None:
            findings.append(
                Finding("signature", wl.where, f"见证文件 {wl.where} 不是有效的检查点行", f"{wl.error}")
            )
            prev_text = wl.text
            continue
        if cp.key_id != expected_key or not keys.signature_ok(key, cp.sig, cp.body()):
            findings.append(
                Finding(
                    "signature",
                    wl.where,
                    f"检查点 {cp.seq}（{wl.where}）的签名在受信任公钥下无效：伪造或被改动",
                    f"checkpoint {cp.seq} ({wl.where}) has no valid signature under the trusted public "
                    "key: forged or edited",
                )
            )
            prev_text = wl.text
            continue
        want_prev = line_digest(prev_text) if prev_text is not None else GENESIS_LINE
        want_seq = prev_cp.seq + 1 if prev_cp is not None else 1
        if cp.prev != want_prev or cp.seq != want_seq:
            findings.append(
                Finding(
                    "signature",
                    wl.where,
                    f"检查点 {cp.seq}（{wl.where}）之前的见证行缺失、被插入或顺序被改动",
                    f"a witness line before checkpoint {cp.seq} ({wl.where}) is missing, inserted or "
                    "out of order",
                )
            )
        elif prev_cp is not None and cp.event_id < prev_cp.event_id:
            findings.append(
                Finding(
                    "signature",
                    wl.where,
                    f"检查点 {cp.seq}（{wl.where}）的事件号小于上一个检查点",
                    f"checkpoint {cp.seq} ({wl.where}) names an earlier event than the one before it",
                )
            )
        good.append(wl)
        prev_text, prev_cp = wl.text, cp
    return good, findings


def _check_positions(session: Session, good: list[WitnessLine]) -> list[Finding]:
    """The event at every checkpointed position must still hash to the signed head."""
    findings: list[Finding] = []
    ids = sorted({wl.checkpoint.event_id for wl in good if wl.checkpoint and wl.checkpoint.event_id})
    hashes: dict[int, tuple[str, str]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for ev in session.execute(select(AuditEvent).where(AuditEvent.id.in_(chunk))).scalars():
            hashes[ev.id] = (ev.hash, recompute(ev))
    for wl in good:
        cp = wl.checkpoint
        assert cp is not None
        if cp.event_id == 0:
            if cp.head != GENESIS:
                findings.append(
                    Finding(
                        "checkpoint",
                        wl.where,
                        f"检查点 {cp.seq} 的起始哈希有误",
                        f"checkpoint {cp.seq}: bad head",
                    )
                )
            continue
        stored = hashes.get(cp.event_id)
        if stored is None:
            findings.append(
                Finding(
                    "checkpoint",
                    f"event {cp.event_id}",
                    f"检查点 {cp.seq}（{wl.where}）签名的第 {cp.event_id} 号事件已不存在",
                    f"event {cp.event_id}, signed in checkpoint {cp.seq} ({wl.where}), no longer exists",
                )
            )
        elif stored != (cp.head, cp.head):
            findings.append(
                Finding(
                    "checkpoint",
                    f"event {cp.event_id}",
                    f"第 {cp.event_id} 号事件与检查点 {cp.seq}（{wl.where}）签名的哈希不符："
                    "该事件或其之前的事件被改写",
                    f"event {cp.event_id} no longer hashes to the head signed in checkpoint {cp.seq} "
                    f"({wl.where}): it or an earlier event was rewritten",
                )
            )
    return findings


def verify_with_witness(session: Session, witness: Witness, public_key: Ed25519PublicKey | None) -> Verdict:
    """Every check, every finding (not only the first), for one report."""
    chain = verify(session)
    findings: list[Finding] = []
    notes: list[Finding] = []
    if not chain.ok:
        findings.append(
            Finding(
                "chain",
                f"event {chain.first_bad_id}",
                f"审计链在第 {chain.first_bad_id} 号事件处被篡改（{chain.problem}）",
                f"audit chain broken at event {chain.first_bad_id}: {chain.problem}",
            )
        )
    events, max_id = session.execute(select(func.count(), func.max(AuditEvent.id))).one()
    events = int(events or 0)
    lines = list(witness.lines())
    good: list[WitnessLine] = []
    if public_key is None:
        if lines:
            findings.append(
                Finding(
                    "key",
                    str(witness.directory),
                    f"没有可信公钥，无法核验 {len(lines)} 个检查点（设置 audit_public_key 或 --public-key）",
                    f"no trusted public key to check {len(lines)} checkpoints (set audit_public_key or "
                    "pass --public-key)",
                )
            )
        else:
            notes.append(
                Finding(
                    "key",
                    str(witness.directory),
                    "尚无签名检查点：只核验了哈希链自身",
                    "no signed checkpoint yet: only the hash chain itself was checked",
                )
            )
    elif not lines:
        findings.append(
            Finding(
                "signature",
                str(witness.directory),
                f"签名密钥已存在，但见证目录 {witness.directory} 中没有检查点：见证被删除或指错了目录",
                f"a signing key exists but the witness {witness.directory} holds no checkpoint: "
                "it was removed, or the wrong folder is named",
            )
        )
    else:
        good, line_findings = _check_lines(lines, public_key)
        findings += line_findings
        findings += _check_positions(session, good)
    last = good[-1].checkpoint if good else None
    if last is not None and (events < last.count or int(max_id or 0) < last.event_id):
        findings.append(
            Finding(
                "count",
                f"event {events + 1}",
                f"审计日志只有 {events} 条事件，少于检查点 {last.seq} 记录的 {last.count} 条：末尾事件被删除",
                f"the audit log holds {events} events, fewer than the {last.count} counted by checkpoint "
                f"{last.seq}: events were deleted",
            )
        )
    return Verdict(chain, events, len(good), last, tuple(findings), tuple(notes))


def verify_configured(
    session: Session, settings: Settings, *, public_key: str = "", witness_dir: Path | None = None
) -> Verdict:
    """Verify with the lab's own settings: the pinned (or .pub) key and the configured witness."""
    trusted = keys.trusted_public_key(public_key or settings.audit_public_key, key_path(settings))
    return verify_with_witness(session, Witness(witness_dir or witness_path(settings)), trusted)
