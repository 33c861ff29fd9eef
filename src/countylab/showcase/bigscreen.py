"""The leader's big screen (驾驶舱): which dashboards rotate on a lobby display, and for how long.

A configuration names dashboards in order and the seconds each stays on screen.  The screen itself
(``/bigscreen/{id}``) polls :func:`screen_data` for the widgets' cached charts — the same cache the
dashboards use, so a lobby display that polls every few seconds runs no query and reads no file.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.errors import NotFound, PermissionDenied, ValidationFailed
from countylab.identity.access import Principal, has_permission
from countylab.identity.roles import Permission
from countylab.showcase import dashboards
from countylab.storage.dashboard_models import BigScreen, Dashboard
from countylab.storage.models import utcnow

MIN_SECONDS, MAX_SECONDS = 5, 600
MAX_DASHBOARDS = 12


def _may_configure(actor: Principal) -> None:
    if not (
        has_permission(actor, Permission.showcase_manage)
        or has_permission(actor, Permission.dashboard_compose)
    ):
        raise PermissionDenied(
            "没有权限配置驾驶舱（需要成果展示管理或看板编排权限）",
            "Permission denied: configuring the big screen needs showcase.manage or dashboard.compose",
            permission=Permission.showcase_manage.value,
            target="bigscreen",
            reason="role",
        )


def _check(session: Session, title: str, dashboard_ids: list[int], seconds: int) -> None:
    if not title.strip() or len(title) > 200:
        raise ValidationFailed(
            "驾驶舱名称不能为空（最多200字）", "A title is required (at most 200 characters)"
        )
    if not dashboard_ids or len(dashboard_ids) > MAX_DASHBOARDS:
        raise ValidationFailed(
            f"请选择 1–{MAX_DASHBOARDS} 个看板",
            f"Choose 1-{MAX_DASHBOARDS} dashboards",
            field="dashboard_ids",
        )
    if len(set(dashboard_ids)) != len(dashboard_ids):
        raise ValidationFailed("看板不能重复", "A dashboard is listed twice", field="dashboard_ids")
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValidationFailed(
            f"每页停留 {MIN_SECONDS}–{MAX_SECONDS} 秒",
            f"Seconds per page must be {MIN_SECONDS}-{MAX_SECONDS}",
            field="seconds",
        )
    found = set(session.execute(select(Dashboard.id).where(Dashboard.id.in_(dashboard_ids))).scalars())
    missing = [i for i in dashboard_ids if i not in found]
    if missing:
        raise NotFound(
            f"看板 {missing[0]} 不存在", f"Dashboard {missing[0]} not found", field="dashboard_ids"
        )


def create(
    session: Session, actor: Principal, *, title: str, dashboard_ids: list[int], seconds: int = 20
) -> BigScreen:
    _may_configure(actor)
    _check(session, title, dashboard_ids, seconds)
    b = BigScreen(
        title=title.strip(), dashboard_ids=list(dashboard_ids), seconds=seconds, created_by=actor.user_id
    )
    session.add(b)
    session.flush()
    audit.record(session, actor, "bigscreen.create", f"bigscreen:{b.id}", dashboards=b.dashboard_ids)
    return b


def update(
    session: Session, actor: Principal, screen_id: int, *, title: str, dashboard_ids: list[int], seconds: int
) -> BigScreen:
    _may_configure(actor)
    b = get(session, screen_id)
    _check(session, title, dashboard_ids, seconds)
    b.title, b.dashboard_ids, b.seconds, b.updated_at = title.strip(), list(dashboard_ids), seconds, utcnow()
    audit.record(
        session, actor, "bigscreen.update", f"bigscreen:{b.id}", dashboards=b.dashboard_ids, seconds=seconds
    )
    return b


def get(session: Session, screen_id: int) -> BigScreen:
    b = session.get(BigScreen, screen_id)
    if b is None:
        raise NotFound(f"驾驶舱 {screen_id} 不存在", f"Big screen {screen_id} not found")
    return b


def list_all(session: Session) -> list[BigScreen]:
    return list(session.execute(select(BigScreen).order_by(BigScreen.id)).scalars())


def view(b: BigScreen) -> dict[str, Any]:
    return {
        "id": b.id,
        "title": b.title,
        "dashboard_ids": list(b.dashboard_ids or []),
        "seconds": b.seconds,
        "updated_at": b.updated_at.isoformat() if b.updated_at else None,
    }


def screen_data(session: Session, screen_id: int) -> dict[str, Any]:
    """What the screen draws now: each dashboard's title and cached charts, in order; a
    ``stamp`` per dashboard (version.data_version) lets the page redraw only what changed."""
    b = get(session, screen_id)
    pages = []
    for did in b.dashboard_ids or []:
        d = session.get(Dashboard, did)
        if d is None:
            continue
        ws = dashboards.widgets(session, d.id)
        pages.append(
            {
                "id": d.id,
                "title": d.title,
                "state": d.state,
                "stamp": f"{d.version}.{d.data_version}",
                "widgets": [
                    {"id": w.id, "kind": w.kind, "title": w.title, "chart": w.chart} for w in ws if w.chart
                ],
            }
        )
    return {**view(b), "pages": pages, "now": utcnow().isoformat()}
