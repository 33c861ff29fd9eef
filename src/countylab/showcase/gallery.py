"""The gallery of released results (成果展示): items the operator chose, each linked to its record.

One item per release request, drawn from one of its released tables.  The public gallery lists
an item only while its request is ``released``; a retraction removes it from every public page
at once (the item stays in the lab, marked, so the operator sees what fell out and why).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.errors import Conflict, NotFound
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.showcase import charts, releases
from countylab.showcase.chartspec import Source, SourceKind
from countylab.storage.airlock_models import ReleaseFile, ReleaseRequest
from countylab.storage.models import utcnow
from countylab.storage.showcase_models import GalleryItem


def add_item(
    s: Session,
    actor: Principal,
    file_id: int,
    *,
    title: str = "",
    caption: str = "",
    kind: str = "table",
    category_column: str = "",
    value_columns: list[str] | None = None,
    unit: str = "",
) -> GalleryItem:
    authorize(actor, Permission.showcase_manage, target=f"release-file:{file_id}")
    f = s.get(ReleaseFile, file_id)
    req = s.get(ReleaseRequest, f.request_id) if f is not None else None
    if f is None or req is None or not releases.showable(req) or f.released_path is None:
        raise NotFound("该文件未出域", "that file has not been released", reason="not_released")
    if s.execute(select(GalleryItem).where(GalleryItem.request_id == req.id)).scalar_one_or_none():
        raise Conflict(
            f"出域成果 {releases.release_number(req.id)} 已在展示中",
            f"released result {releases.release_number(req.id)} is already in the gallery",
            reason="duplicate",
        )
    table = releases.read_table(f)
    when = req.released_at.isoformat() if req.released_at else ""
    source = Source(
        SourceKind.release, f"出域编号 {releases.release_number(req.id)}", f"release:{req.id}", when
    )
    chart = charts.from_table(
        table,
        kind=kind,
        title=title,
        source=source,
        category_column=category_column,
        value_columns=value_columns or [],
        unit=unit,
    )
    top = s.scalar(select(func.max(GalleryItem.position))) or 0
    item = GalleryItem(
        request_id=req.id,
        file_id=f.id,
        title=chart.title[:200],
        caption=caption.strip()[:2000],
        chart=chart.to_dict(),
        position=int(top) + 1,
        added_by=actor.user_id,
        added_at=utcnow(),
    )
    s.add(item)
    s.flush()
    audit.record(s, actor, "showcase.gallery.add", f"release:{req.id}", file_id=f.id, kind=kind)
    return item


def remove_item(s: Session, actor: Principal, request_id: int) -> None:
    authorize(actor, Permission.showcase_manage, target=f"release:{request_id}")
    item = s.execute(select(GalleryItem).where(GalleryItem.request_id == request_id)).scalar_one_or_none()
    if item is None:
        raise NotFound("展示中没有该成果", "that result is not in the gallery")
    s.delete(item)
    audit.record(s, actor, "showcase.gallery.remove", f"release:{request_id}")


@dataclass(frozen=True)
class ItemView:
    request_id: int
    title: str
    caption: str
    spec: dict[str, Any]
    record: releases.ReleaseRecord | None
    showable: bool
    state: str


def items(s: Session, *, showable_only: bool) -> list[ItemView]:
    out: list[ItemView] = []
    for item in s.execute(select(GalleryItem).order_by(GalleryItem.position, GalleryItem.id)).scalars():
        req = s.get(ReleaseRequest, item.request_id)
        ok = releases.showable(req)
        if showable_only and not ok:
            continue
        record = releases.record(s, req) if req is not None and ok else None
        out.append(
            ItemView(
                item.request_id,
                item.title,
                item.caption,
                dict(item.chart),
                record,
                ok,
                req.state if req else "",
            )
        )
    return out


def public_item(s: Session, request_id: int) -> ItemView:
    for view in items(s, showable_only=True):
        if view.request_id == request_id:
            return view
    raise NotFound("展示中没有该成果", "no such result in the gallery", reason="no_item")
