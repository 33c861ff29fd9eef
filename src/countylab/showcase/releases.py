"""Released results as the showcase reads them: the release record and the released tables.

CONTRACT (shared with the county map, dashboards and briefs): a release is *showable* iff its
``ReleaseRequest.state == "released"``.  A retracted request (``retracted``) is not, so every
chart, gallery item or dashboard built on it leaves the public pages the moment it is retracted.

What the public may know of a release record is fixed here and nowhere else: its number
(``R-<id>``), the project's title, the date it was released, and the approvals as *roles* with
dates (审核员 ×2, 数据安全官) — never the checkers' names, their comments or the review itself.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.airlock.states import ReleaseState
from countylab.errors import NotFound, UserError
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.storage.airlock_models import ReleaseFile, ReleaseRequest, ReleaseVote
from countylab.storage.models import Org, Project

MAX_TABLE_ROWS = 200  # a showcase table is a summary; anything longer is not a chart
MAX_TABLE_BYTES = 2 << 20


def showable(req: ReleaseRequest | None) -> bool:
    return req is not None and req.state == ReleaseState.released.value


def release_number(request_id: int) -> str:
    return f"R-{request_id}"


@dataclass(frozen=True)
class Approval:
    role: str  # checker | security_officer (a role, never a person)
    at: datetime


@dataclass(frozen=True)
class ReleaseRecord:
    request_id: int
    number: str
    title: str
    project_id: int
    project_title: str
    organisation: str
    released_at: datetime | None
    approvals: list[Approval]
    grade: str

    def to_public(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "project": self.project_title,
            "organisation": self.organisation,
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "approvals": [{"role": a.role, "at": a.at.isoformat()} for a in self.approvals],
            "grade": self.grade,
        }


def record(s: Session, req: ReleaseRequest) -> ReleaseRecord:
    """The public release record of ``req`` (its approvals are the votes of its last round)."""
    project = s.get(Project, req.project_id)
    org = s.get(Org, project.org_id) if project is not None and project.org_id else None
    votes = s.execute(
        select(ReleaseVote)
        .where(
            ReleaseVote.request_id == req.id,
            ReleaseVote.round == req.round,
            ReleaseVote.choice == "approve",
        )
        .order_by(ReleaseVote.at)
    ).scalars()
    return ReleaseRecord(
        request_id=req.id,
        number=release_number(req.id),
        title=req.title or (project.title if project else ""),
        project_id=req.project_id,
        project_title=project.title if project else "",
        organisation=org.name if org else "",
        released_at=req.released_at,
        approvals=[Approval(v.role, v.at) for v in votes],
        grade=req.grade,
    )


@dataclass(frozen=True)
class ReleasedTable:
    file_id: int
    name: str
    description: str
    columns: list[str]
    rows: list[list[Any]]


def released_files(s: Session, req: ReleaseRequest) -> list[ReleaseFile]:
    return [
        f
        for f in s.execute(
            select(ReleaseFile).where(ReleaseFile.request_id == req.id).order_by(ReleaseFile.id)
        ).scalars()
        if f.released_path is not None
    ]


def read_table(f: ReleaseFile) -> ReleasedTable:
    """The released bytes of a CSV/TSV file as columns and typed rows (numbers as numbers).

    Only the *released* copy is read (the regenerated file the checkers approved), never the
    submitted one."""
    name = PurePosixPath(f.name).name
    suffix = PurePosixPath(f.name).suffix.lower()
    if f.released_path is None or suffix not in (".csv", ".tsv"):
        raise UserError(f"{name} 不是已出域的表格", f"{name} is not a released table", reason="not_a_table")
    data = Path(f.released_path).read_bytes()
    if len(data) > MAX_TABLE_BYTES:
        raise UserError(f"{name} 太大，不适合展示", f"{name} is too large to show", reason="too_large")
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter="\t" if suffix == ".tsv" else ",")
    lines = [r for r in reader if r]
    if not lines:
        raise UserError(f"{name} 是空表", f"{name} is empty", reason="empty_table")
    header, body = lines[0], lines[1:]
    if len(body) > MAX_TABLE_ROWS:
        raise UserError(
            f"{name} 超过 {MAX_TABLE_ROWS} 行，不适合展示",
            f"{name} has more than {MAX_TABLE_ROWS} rows: too long to show",
            reason="too_long",
        )
    return ReleasedTable(f.id, name, f.description, header, [[_typed(c) for c in r] for r in body])


def _typed(cell: str) -> Any:
    text = cell.strip()
    if not text or (len(text) > 1 and text[0] == "0" and text[1] != "."):
        return text  # blanks and codes with leading zeros stay text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if value == value and abs(value) != float("inf") else text


def load_showable(s: Session, request_id: int) -> ReleaseRequest:
    """A released request, or :class:`NotFound` (also for one under review or retracted, so a
    reader learns nothing of requests that are not released)."""
    req = s.get(ReleaseRequest, request_id)
    if not showable(req):
        raise NotFound(
            f"出域成果 {release_number(request_id)} 不存在或未出域",
            f"released result {release_number(request_id)} not found or not released",
            reason="not_released",
        )
    assert req is not None
    return req


def leader_view(s: Session, actor: Principal, request_id: int) -> dict[str, Any]:
    """A released result for whoever may view the showcase (leaders): the public record and the
    released tables.  Drafts, requests under review, votes and comments stay out of reach:
    this reads only ``released`` requests and only their released copies."""
    authorize(actor, Permission.showcase_view, target=f"release:{request_id}")
    req = load_showable(s, request_id)
    tables: list[ReleasedTable] = []
    others: list[str] = []
    for f in released_files(s, req):
        try:
            tables.append(read_table(f))
        except UserError:
            others.append(PurePosixPath(f.name).name)
    return {"record": record(s, req), "tables": tables, "others": others}


def showable_requests(s: Session, actor: Principal, limit: int = 200) -> list[ReleaseRecord]:
    """Every released result, newest first (the leader's list and the operator's choices)."""
    authorize(actor, Permission.showcase_view, target="releases")
    rows = s.execute(
        select(ReleaseRequest)
        .where(ReleaseRequest.state == ReleaseState.released.value)
        .order_by(ReleaseRequest.released_at.desc(), ReleaseRequest.id.desc())
        .limit(limit)
    ).scalars()
    return [record(s, r) for r in rows]
