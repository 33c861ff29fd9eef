"""What changed between two rounds of a release request, and the developer's replies.

A checker who returned a request wants to see what the developer did about it, not read every
file again: which files were added, removed or changed, and for tables how the shape changed
and which cells differ.  The comparison is made once, when the request is resubmitted, from the
files both rounds hold in the lab's store (CSV/TSV up to :data:`MAX_DIFF_BYTES` each; other
files by SHA-256 and size only), and kept in ``release_round_changes``.

Cell values are shown only to reviewers, and only while the request is in review: the same
rule as the preview (a file that failed its checks is not shown to anyone).  The developer sees
counts.  A reply to a checker comment is an ordinary comment linked to the one it answers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.errors import ValidationFailed
from countylab.storage.airlock_changes_models import ReleaseRoundChange
from countylab.storage.airlock_models import ReleaseComment, ReleaseFile

MAX_DIFF_BYTES = 1024 * 1024
MAX_CELLS_LISTED = 30
MAX_REPLY = 5000


@dataclass(frozen=True)
class Snapshot:
    """A file of the round being closed, taken before its row is removed."""

    name: str
    sha256: str
    bytes: int
    path: str

    @classmethod
    def of(cls, f: ReleaseFile) -> Snapshot:
        return cls(f.name, f.sha256, f.bytes, f.stored_path)


def _table(path: str) -> list[list[str]] | None:
    p = Path(path)
    if PurePosixPath(p.name).suffix.lower() not in (".csv", ".tsv"):
        return None
    try:
        if p.stat().st_size > MAX_DIFF_BYTES:
            return None
        text = p.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
    return [list(r) for r in csv.reader(io.StringIO(text), delimiter=delimiter)]


def table_diff(old: list[list[str]], new: list[list[str]]) -> dict[str, Any]:
    """Shape, header and cell changes of two tables (rows matched by position under the header)."""
    old_header, new_header = (old[0] if old else []), (new[0] if new else [])
    shape = {"old": [max(len(old) - 1, 0), len(old_header)], "new": [max(len(new) - 1, 0), len(new_header)]}
    diff: dict[str, Any] = {
        "shape": shape,
        "columns_added": [c for c in new_header if c not in old_header],
        "columns_removed": [c for c in old_header if c not in new_header],
    }
    shared = [c for c in new_header if c in old_header]
    cells: list[dict[str, Any]] = []
    changed = 0
    for i in range(1, min(len(old), len(new))):
        for col in shared:
            a = old[i][old_header.index(col)] if old_header.index(col) < len(old[i]) else ""
            b = new[i][new_header.index(col)] if new_header.index(col) < len(new[i]) else ""
            if a != b:
                changed += 1
                if len(cells) < MAX_CELLS_LISTED:
                    cells.append({"row": i, "column": col, "old": a, "new": b})
    diff["cells_changed"] = changed
    diff["cells"] = cells
    return diff


def compare(
    old: Sequence[Snapshot], new: Sequence[ReleaseFile], *, cells: bool = True
) -> list[dict[str, Any]]:
    """Per file name: ``added``, ``removed``, ``changed`` (with a table diff where cheap) or
    ``unchanged``.  ``cells=False`` when the last round failed its checks: its files were never
    shown to anyone, so their cell values are not kept either (shape and counts only)."""
    before = {f.name: f for f in old}
    after = {f.name: f for f in new}
    out: list[dict[str, Any]] = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        entry: dict[str, Any] = {"name": name}
        if a is None and b is not None:
            entry |= {"status": "added", "bytes": b.bytes, "sha256": b.sha256}
        elif b is None and a is not None:
            entry |= {"status": "removed", "bytes": a.bytes, "sha256": a.sha256}
        elif a is not None and b is not None and a.sha256 == b.sha256:
            entry |= {"status": "unchanged", "bytes": b.bytes, "sha256": b.sha256}
        elif a is not None and b is not None:
            entry |= {"status": "changed", "old_bytes": a.bytes, "bytes": b.bytes, "sha256": b.sha256}
            old_t, new_t = _table(a.path), _table(b.stored_path)
            if old_t is not None and new_t is not None:
                entry["table"] = table_diff(old_t, new_t)
                if not cells:
                    entry["table"]["cells"] = []
        out.append(entry)
    return out


def check_replies(s: Session, request_id: int, replies: Mapping[int, str]) -> dict[int, str]:
    """The replies, each to a comment of this request and 1–5000 characters; else nothing is kept."""
    if not replies:
        return {}
    ids = set(s.execute(select(ReleaseComment.id).where(ReleaseComment.request_id == request_id)).scalars())
    clean: dict[int, str] = {}
    for comment_id, body in replies.items():
        if int(comment_id) not in ids:
            raise ValidationFailed(
                f"评论 #{comment_id} 不属于该申请",
                f"comment #{comment_id} is not a comment of this request",
                reason="no_comment",
            )
        text = str(body or "").strip()
        if not text:
            continue
        if len(text) > MAX_REPLY:
            raise ValidationFailed(
                f"对评论 #{comment_id} 的回复超过 {MAX_REPLY} 字",
                f"the reply to comment #{comment_id} is over {MAX_REPLY} characters",
                reason="body",
            )
        clean[int(comment_id)] = text
    return clean


def record(
    s: Session,
    request_id: int,
    round_: int,
    files: list[dict[str, Any]],
    replies: Sequence[tuple[int, int]],
) -> ReleaseRoundChange:
    row = ReleaseRoundChange(
        request_id=request_id,
        round=round_,
        files=files,
        replies=[{"comment_id": c, "reply_id": r} for c, r in replies],
    )
    s.add(row)
    s.flush()
    return row


def view(s: Session, request_id: int, round_: int, *, cells: bool, names: bool) -> dict[str, Any] | None:
    """The change into ``round_``: ``names`` for reviewers (file names and sizes), ``cells`` only
    while the files may be previewed.  ``None`` for round 1 or before this was recorded."""
    row = s.execute(
        select(ReleaseRoundChange).where(
            ReleaseRoundChange.request_id == request_id, ReleaseRoundChange.round == round_
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    counts: dict[str, int] = {}
    files: list[dict[str, Any]] = []
    for f in row.files or []:
        counts[f["status"]] = counts.get(f["status"], 0) + 1
        if names:
            entry = dict(f)
            if not cells and "table" in entry:
                entry["table"] = {k: v for k, v in entry["table"].items() if k != "cells"}
            files.append(entry)
    return {
        "round": row.round,
        "counts": counts,
        "files": files,
        "replies": {int(r["comment_id"]): int(r["reply_id"]) for r in row.replies or []},
    }


def replies_of(s: Session, request_id: int) -> dict[int, int]:
    """reply comment id -> the comment it answers, over every round (for the comment list)."""
    out: dict[int, int] = {}
    for row in s.execute(
        select(ReleaseRoundChange).where(ReleaseRoundChange.request_id == request_id)
    ).scalars():
        for r in row.replies or []:
            out[int(r["reply_id"])] = int(r["comment_id"])
    return out
