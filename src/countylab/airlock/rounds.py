"""Rounds of a release request: one immutable record per submission.

A round is opened when a request is submitted (round 1) or resubmitted (round 2, 3…).  It
records the job the files came from, the datasets, grade and review rule computed from that
job, and every file with its SHA-256; the automatic checks add their results once; when the
round closes (returned, withdrawn) its votes are copied in and it is not written again.
Released, rejected and approved rounds are closed by the request's own final state, and their
votes stay in ``release_votes`` under the round number, which no later round ever counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.identity.access import Principal
from countylab.storage.airlock_models import ReleaseFile, ReleaseRequest, ReleaseVote
from countylab.storage.airlock_rounds_models import ReleaseRound
from countylab.storage.models import utcnow

if TYPE_CHECKING:
    from countylab.airlock.service import FileChoice


def file_hashes(files: Sequence[ReleaseFile]) -> list[dict[str, Any]]:
    """What the audit log and a round record of each file: its name, SHA-256 and size."""
    return [{"name": f.name, "sha256": f.sha256, "bytes": f.bytes} for f in files]


def current(s: Session, req: ReleaseRequest) -> ReleaseRound | None:
    q = select(ReleaseRound).where(ReleaseRound.request_id == req.id, ReleaseRound.round == req.round)
    return s.execute(q).scalar_one_or_none()


def open_round(
    s: Session, req: ReleaseRequest, actor: Principal, files: Sequence[ReleaseFile]
) -> ReleaseRound:
    row = ReleaseRound(
        request_id=req.id,
        round=req.round,
        job_id=req.job_id,
        grade=req.grade,
        checkers_needed=req.checkers_needed,
        officer_needed=req.officer_needed,
        datasets=list(req.datasets or []),
        selectors=sorted({str((f.spec or {}).get("selector") or f.name) for f in files}),
        files=file_hashes(files),
        checks=[],
        checks_status=None,
        votes=[],
        outcome=None,
        return_reason="",
        submitted_by=actor.user_id,
    )
    s.add(row)
    s.flush()
    return row


def record_checks(s: Session, req: ReleaseRequest, files: Sequence[ReleaseFile], failed: list[str]) -> None:
    """The round's check results, written once."""
    row = current(s, req)
    if row is None or row.checked_at is not None:
        return
    row.checks = [
        {
            "name": f.name,
            "sha256": f.sha256,
            "status": f.check_status,
            "checks": [[c.get("check"), c.get("status")] for c in f.checks or []],
        }
        for f in files
    ]
    row.checks_status = req.checks_status
    row.return_reason = ",".join(failed)
    row.checked_at = utcnow()


def close(s: Session, req: ReleaseRequest, outcome: str) -> None:
    """Close the current round: copy its votes in; it is never written again."""
    row = current(s, req)
    if row is None or row.closed_at is not None:
        return
    votes = s.execute(
        select(ReleaseVote).where(ReleaseVote.request_id == req.id, ReleaseVote.round == req.round)
    ).scalars()
    row.votes = [
        {"voter_id": v.voter_id, "role": v.role, "choice": v.choice, "at": v.at.isoformat()} for v in votes
    ]
    row.outcome = outcome if not req.return_reason else f"{outcome}:{req.return_reason}"
    row.closed_at = utcnow()


def history(s: Session, req: ReleaseRequest, *, full: bool) -> list[dict[str, Any]]:
    """Every round of ``req``.  ``full`` (checkers, stewards): file names, hashes and per-file
    results; otherwise counts and the names of the rules that failed."""
    rows = s.execute(
        select(ReleaseRound).where(ReleaseRound.request_id == req.id).order_by(ReleaseRound.round)
    ).scalars()
    out: list[dict[str, Any]] = []
    for r in rows:
        view: dict[str, Any] = {
            "round": r.round,
            "job_id": r.job_id,
            "grade": r.grade,
            "checkers_needed": r.checkers_needed,
            "officer_needed": r.officer_needed,
            "files_count": len(r.files or []),
            "checks_status": r.checks_status,
            "failed_rules": [x for x in (r.return_reason or "").split(",") if x],
            "outcome": r.outcome,
            "votes": len(r.votes or []),
            "submitted_at": r.submitted_at.isoformat(),
        }
        if full:
            view |= {
                "files": list(r.files or []),
                "checks": list(r.checks or []),
                "vote_list": list(r.votes or []),
            }
        out.append(view)
    return out


def previous_choices(files: Sequence[ReleaseFile]) -> list[FileChoice]:
    """The selectors (and what the developer said about them) of the files a round held."""
    from countylab.airlock.service import FileChoice

    seen: dict[str, FileChoice] = {}
    for f in files:
        spec = dict(f.spec or {})
        sel = str(spec.get("selector") or f.name)
        seen.setdefault(
            sel,
            FileChoice(
                sel,
                f.description,
                f.controls,
                tuple(spec.get("count_columns") or ()),
                tuple(spec.get("magnitude_columns") or ()),
                str(spec.get("filter") or ""),
            ),
        )
    return list(seen.values())
