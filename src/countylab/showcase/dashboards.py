"""Dashboards (数据看板): composing them from widgets, and what a reader of one sees.

A dashboard is an ordered grid of widgets, each rendered from ONE source when it is saved
(:mod:`countylab.showcase.widgets`).  Every edit bumps ``version`` and sends the dashboard back to
draft: an approval covers exactly the version the security officer looked at, so a published
dashboard that is changed leaves the public pages until it is approved again
(:mod:`countylab.showcase.publication`).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from countylab import audit
from countylab.errors import Conflict, NotFound, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.showcase.widgets import Paths, WidgetSpec, render
from countylab.storage.dashboard_models import Dashboard, DashboardApproval, DashboardWidget
from countylab.storage.models import utcnow

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
MAX_WIDGETS = 24
STATES = ("draft", "pending", "published")


def get(session: Session, dashboard_id: int) -> Dashboard:
    d = session.get(Dashboard, dashboard_id)
    if d is None:
        raise NotFound(f"看板 {dashboard_id} 不存在", f"Dashboard {dashboard_id} not found")
    return d


def widgets(session: Session, dashboard_id: int) -> list[DashboardWidget]:
    return list(
        session.execute(
            select(DashboardWidget)
            .where(DashboardWidget.dashboard_id == dashboard_id)
            .order_by(DashboardWidget.position, DashboardWidget.id)
        ).scalars()
    )


def create(session: Session, actor: Principal, *, slug: str, title: str, description: str = "") -> Dashboard:
    authorize(actor, Permission.dashboard_compose, target=f"dashboard:{slug}")
    slug = slug.strip()
    if not _SLUG.match(slug):
        raise ValidationFailed(
            "看板标识只能含小写字母、数字和连字符（2–64位）",
            "A dashboard slug may contain only a-z, 0-9 and '-' (2-64 characters)",
            field="slug",
        )
    if not title.strip() or len(title) > 200:
        raise ValidationFailed(
            "看板名称不能为空（最多200字）", "A title is required (at most 200 characters)"
        )
    if session.execute(select(Dashboard.id).where(Dashboard.slug == slug)).first():
        raise Conflict(f"看板标识“{slug}”已存在", f"Dashboard slug '{slug}' already exists", field="slug")
    d = Dashboard(
        slug=slug,
        title=title.strip(),
        description=description.strip(),
        state="draft",
        version=1,
        data_version=1,
        created_by=actor.user_id,
    )
    session.add(d)
    session.flush()
    audit.record(session, actor, "dashboard.create", f"dashboard:{d.id}", slug=slug, title=d.title)
    return d


def update_meta(
    session: Session, actor: Principal, dashboard_id: int, *, title: str, description: str
) -> Dashboard:
    authorize(actor, Permission.dashboard_compose, target=f"dashboard:{dashboard_id}")
    d = get(session, dashboard_id)
    if not title.strip() or len(title) > 200:
        raise ValidationFailed(
            "看板名称不能为空（最多200字）", "A title is required (at most 200 characters)"
        )
    d.title, d.description = title.strip(), description.strip()
    edited(session, actor, d, "dashboard.update", title=d.title)
    return d


def add_widget(
    session: Session, actor: Principal, paths: Paths, dashboard_id: int, spec: WidgetSpec
) -> DashboardWidget:
    """Render the widget now (a bad source is refused with its reason) and append it."""
    authorize(actor, Permission.dashboard_compose, target=f"dashboard:{dashboard_id}")
    d = get(session, dashboard_id)
    count = session.execute(
        select(func.count()).select_from(DashboardWidget).where(DashboardWidget.dashboard_id == d.id)
    ).scalar_one()
    if count >= MAX_WIDGETS:
        raise ValidationFailed(
            f"一个看板最多 {MAX_WIDGETS} 个图表", f"A dashboard holds at most {MAX_WIDGETS} widgets"
        )
    chart = render(session, paths, spec)
    w = DashboardWidget(
        dashboard_id=d.id,
        position=int(count),
        kind=spec.kind,
        title=spec.title.strip(),
        unit=spec.unit,
        source_kind=spec.source_kind,
        source=dict(spec.source),
        chart=chart.to_dict(),
        rendered_at=utcnow(),
    )
    session.add(w)
    session.flush()
    edited(session, actor, d, "dashboard.widget.add", widget_id=w.id, kind=w.kind, source_kind=w.source_kind)
    return w


def update_widget(
    session: Session, actor: Principal, paths: Paths, dashboard_id: int, widget_id: int, spec: WidgetSpec
) -> DashboardWidget:
    authorize(actor, Permission.dashboard_compose, target=f"dashboard:{dashboard_id}")
    d = get(session, dashboard_id)
    w = _widget(session, d.id, widget_id)
    chart = render(session, paths, spec)
    w.kind, w.title, w.unit = spec.kind, spec.title.strip(), spec.unit
    w.source_kind, w.source, w.chart, w.rendered_at = (
        spec.source_kind,
        dict(spec.source),
        chart.to_dict(),
        utcnow(),
    )
    edited(session, actor, d, "dashboard.widget.update", widget_id=w.id)
    return w


def move_widget(session: Session, actor: Principal, dashboard_id: int, widget_id: int, position: int) -> None:
    authorize(actor, Permission.dashboard_compose, target=f"dashboard:{dashboard_id}")
    d = get(session, dashboard_id)
    ws = widgets(session, d.id)
    w = next((x for x in ws if x.id == widget_id), None)
    if w is None:
        raise NotFound("图表不存在", "Widget not found")
    ws.remove(w)
    ws.insert(max(0, min(position, len(ws))), w)
    for i, x in enumerate(ws):
        x.position = i
    edited(session, actor, d, "dashboard.widget.move", widget_id=w.id, position=w.position)


def delete_widget(session: Session, actor: Principal, dashboard_id: int, widget_id: int) -> None:
    authorize(actor, Permission.dashboard_compose, target=f"dashboard:{dashboard_id}")
    d = get(session, dashboard_id)
    w = _widget(session, d.id, widget_id)
    session.delete(w)
    session.flush()
    for i, x in enumerate(widgets(session, d.id)):
        x.position = i
    edited(session, actor, d, "dashboard.widget.delete", widget_id=widget_id)


def _widget(session: Session, dashboard_id: int, widget_id: int) -> DashboardWidget:
    w = session.get(DashboardWidget, widget_id)
    if w is None or w.dashboard_id != dashboard_id:
        raise NotFound("图表不存在", "Widget not found")
    return w


def edited(session: Session, actor: Principal, d: Dashboard, action: str, **details: Any) -> None:
    """Every edit: a new version, back to draft (off the public pages), pending approvals void."""
    was = d.state
    d.version += 1
    d.state = "draft"
    d.updated_at = utcnow()
    session.execute(
        update(DashboardApproval)
        .where(DashboardApproval.dashboard_id == d.id, DashboardApproval.state == "pending")
        .values(state="superseded")
        .execution_options(synchronize_session=False)
    )
    audit.record(session, actor, action, f"dashboard:{d.id}", version=d.version, was=was, **details)


def list_all(session: Session) -> list[Dashboard]:
    return list(session.execute(select(Dashboard).order_by(Dashboard.id)).scalars())


def summary(d: Dashboard, n_widgets: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": d.id,
        "slug": d.slug,
        "title": d.title,
        "description": d.description,
        "state": d.state,
        "version": d.version,
        "data_version": d.data_version,
        "published_version": d.published_version,
        "published_at": d.published_at.isoformat() if d.published_at else None,
        "updated_at": d.updated_at.isoformat() if d.updated_at else None,
    }
    if n_widgets is not None:
        out["widgets"] = n_widgets
    return out


def widget_view(w: DashboardWidget) -> dict[str, Any]:
    return {
        "id": w.id,
        "position": w.position,
        "kind": w.kind,
        "title": w.title,
        "unit": w.unit,
        "source_kind": w.source_kind,
        "source": dict(w.source or {}),
        "chart": w.chart,
        "rendered_at": w.rendered_at.isoformat() if w.rendered_at else None,
    }


def view(session: Session, dashboard_id: int) -> dict[str, Any]:
    """A dashboard with its widgets and the latest approval (the in-lab view and API)."""
    d = get(session, dashboard_id)
    ws = widgets(session, d.id)
    latest = session.execute(
        select(DashboardApproval)
        .where(DashboardApproval.dashboard_id == d.id)
        .order_by(DashboardApproval.id.desc())
        .limit(1)
    ).scalar()
    out = summary(d, len(ws))
    out["items"] = [widget_view(w) for w in ws]
    out["approval"] = approval_view(latest) if latest is not None else None
    return out


def approval_view(a: DashboardApproval) -> dict[str, Any]:
    return {
        "id": a.id,
        "version": a.version,
        "state": a.state,
        "numbers": list(a.numbers or []),
        "requested_by": a.requested_by,
        "requested_at": a.requested_at.isoformat() if a.requested_at else None,
        "decided_by": a.decided_by,
        "decided_at": a.decided_at.isoformat() if a.decided_at else None,
        "comment": a.comment,
    }


def counts(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(DashboardWidget.dashboard_id, func.count()).group_by(DashboardWidget.dashboard_id)
    ).all()
    return {int(k): int(n) for k, n in rows}
