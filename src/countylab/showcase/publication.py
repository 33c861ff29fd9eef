"""Publishing a dashboard to the public pages, with the security officer's approval.

Why an approval lists every number: the security officer approves *numbers*, not a layout.
:func:`numbers` walks every widget's rendered chart (``Chart.numbers()``) and names each number with
its widget, source kind and the record it can be traced to; the list is stored with the approval
and shown on it.  A number that is neither open (一般1级), released (出域申请 ``released``) nor DP
(with its interval) is refused, and the refusal names it.

The public pages show a dashboard only while it is ``published`` *and* every release it draws on
is still ``released``: a withdrawn release takes the dashboard off the public pages at once (404 with
a kind message), until it is fixed and approved again.  Approval needs four eyes: whoever asked for
it cannot approve it.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit, notify
from countylab.errors import Conflict, NotFound, PermissionDenied, UserError, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.showcase import dashboards
from countylab.showcase.chartspec import Chart, ChartKind, Series, Source, SourceKind
from countylab.showcase.widgets import OPEN_GRADE, released_file_ids
from countylab.storage.airlock_models import ReleaseFile, ReleaseRequest
from countylab.storage.dashboard_models import Dashboard, DashboardApproval, DashboardWidget, ShowcaseMetric
from countylab.storage.models import Dataset, utcnow


def chart_of(spec: dict[str, Any]) -> Chart:
    """A :class:`Chart` back from its ``to_dict`` (re-checked: a DP number needs its interval)."""
    src = spec["source"]
    return Chart(
        kind=ChartKind(spec["kind"]),
        title=spec["title"],
        source=Source(SourceKind(src["kind"]), src["label"], src.get("ref", ""), src.get("as_of", "")),
        unit=spec.get("unit", ""),
        categories=list(spec.get("categories") or []),
        category_names=spec.get("category_names"),
        series=[
            Series(s["name"], list(s["values"]), s.get("low"), s.get("high"), s.get("texts"))
            for s in spec.get("series") or []
        ],
        columns=spec.get("columns"),
        rows=spec.get("rows"),
        level=spec.get("level", ""),
        note=spec.get("note", ""),
    )


def numbers(session: Session, ws: list[DashboardWidget]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(every number that will appear, the numbers that may not), in widget order."""
    shown: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    files = released_file_ids(session, [int(w.source["file_id"]) for w in ws if w.source_kind == "release"])
    for w in ws:
        if not w.chart:
            refused.append(
                {"widget": w.title, "name": w.title, "reason_zh": "没有图表", "reason_en": "no chart"}
            )
            continue
        chart = chart_of(w.chart)
        why = _not_showable(session, w, chart, files)
        for name, value, kind in chart.numbers():
            row = {
                "widget_id": w.id,
                "widget": w.title,
                "name": name,
                "value": value,
                "source_kind": kind.value,
                "source": chart.source.label,
                "ref": chart.source.ref,
            }
            shown.append(row)
            if why is not None:
                refused.append({**row, "reason_zh": why[0], "reason_en": why[1]})
    return shown, refused


def _not_showable(
    session: Session, w: DashboardWidget, chart: Chart, released: set[int]
) -> tuple[str, str] | None:
    if chart.source.kind.value != w.source_kind:
        return ("来源类型与图表不符", "the source kind does not match the chart")
    if w.source_kind == "open":
        ds = session.get(Dataset, int(w.source.get("dataset_id") or 0))
        if ds is None:
            return ("数据集已不存在", "the dataset no longer exists")
        if ds.grade != OPEN_GRADE:
            return (
                f"来自数据集“{ds.title}”，其分级不是一般1级（开放）",
                f"it comes from dataset '{ds.title}', which is not graded general_1 (open)",
            )
        return None
    if w.source_kind == "release":
        fid = int(w.source.get("file_id") or 0)
        if fid not in released:
            f = session.get(ReleaseFile, fid)
            req = session.get(ReleaseRequest, f.request_id) if f else None
            state = req.state if req else "?"
            return (
                f"来自出域申请 R-{req.id if req else '?'}，其状态为“{state}”而非已出域",
                f"it comes from release request R-{req.id if req else '?'}, which is {state}, not released",
            )
        return None
    if w.source_kind == "dp":
        m = session.get(ShowcaseMetric, int(w.source.get("metric_id") or 0))
        if m is None or not m.result:
            return ("差分隐私指标不存在或没有结果", "the DP metric is gone or has no result")
        return None
    return ("来源不是开放数据、已出域结果或差分隐私统计", "the source is neither open, released nor DP")


def _refuse(refused: list[dict[str, Any]]) -> UserError:
    first = refused[0]
    return ValidationFailed(
        f"不能发布：图表“{first['widget']}”中的数字“{first['name']}”{first['reason_zh']}。"
        f"看板上只能出现开放数据、已出域结果或带区间的差分隐私统计。",
        f"Cannot publish: the number '{first['name']}' in widget '{first['widget']}': {first['reason_en']}. "
        "A dashboard shows only open data, released results or DP statistics with their intervals.",
        reason="not_showable",
        number=first["name"],
        widget=first["widget"],
        refused=[{k: r.get(k) for k in ("widget", "name", "reason_zh", "reason_en")} for r in refused[:50]],
    )


def submit(session: Session, actor: Principal, dashboard_id: int) -> DashboardApproval:
    """Ask the security officer to publish the current version; the numbers are listed now."""
    authorize(actor, Permission.dashboard_compose, target=f"dashboard:{dashboard_id}")
    d = dashboards.get(session, dashboard_id)
    ws = dashboards.widgets(session, d.id)
    if not ws:
        raise ValidationFailed("看板还没有图表", "The dashboard has no widgets yet")
    if d.state == "published":
        raise Conflict("看板已发布", "The dashboard is already published", reason="published")
    shown, refused = numbers(session, ws)
    if refused:
        raise _refuse(refused)
    pending = _pending(session, d.id)
    if pending is not None:
        pending.state = "superseded"
    a = DashboardApproval(
        dashboard_id=d.id,
        version=d.version,
        state="pending",
        numbers=shown,
        widgets=[dashboards.widget_view(w) for w in ws],
        requested_by=actor.user_id,
        requested_at=utcnow(),
        comment="",
    )
    session.add(a)
    d.state = "pending"
    session.flush()
    audit.record(
        session, actor, "dashboard.submit", f"dashboard:{d.id}", version=d.version, numbers=len(shown)
    )
    notify.emit(
        session,
        "dashboard.submitted",
        recipients=notify.to_roles("steward"),
        target=f"dashboard:{d.id}",
        title=d.title,
    )
    return a


def _pending(session: Session, dashboard_id: int) -> DashboardApproval | None:
    return session.execute(
        select(DashboardApproval).where(
            DashboardApproval.dashboard_id == dashboard_id, DashboardApproval.state == "pending"
        )
    ).scalar()


def decide(
    session: Session,
    actor: Principal,
    dashboard_id: int,
    *,
    approve: bool,
    version: int,
    comment: str = "",
) -> DashboardApproval:
    """The security officer's decision on the pending request for ``version``."""
    authorize(actor, Permission.dashboard_approve, target=f"dashboard:{dashboard_id}")
    d = dashboards.get(session, dashboard_id)
    a = _pending(session, d.id)
    if a is None or d.state != "pending":
        raise Conflict("没有待审批的发布申请", "No publication request is pending", reason="not_pending")
    if version != d.version or a.version != d.version:
        raise Conflict(
            f"看板在提交后已修改（现为第 {d.version} 版），请重新提交",
            f"The dashboard changed after it was submitted (now version {d.version}); submit it again",
            reason="version",
        )
    if a.requested_by is not None and a.requested_by == actor.user_id:
        raise PermissionDenied(
            "发布申请须由他人审批（不能审批自己提交的看板）",
            "Someone else must approve a dashboard you submitted",
            permission=Permission.dashboard_approve.value,
            target=f"dashboard:{d.id}",
            reason="four_eyes",
        )
    now = utcnow()
    if approve:
        shown, refused = numbers(session, dashboards.widgets(session, d.id))
        if refused:
            raise _refuse(refused)
        if [(n["name"], n["value"]) for n in shown] != [(n["name"], n["value"]) for n in a.numbers]:
            raise Conflict(
                "提交后看板上的数字已更新（指标刷新或开放数据更新），请重新提交以核对新的数字",
                "The numbers changed after submission (a metric or open data refreshed); submit again",
                reason="numbers_changed",
            )
        a.state, d.state, d.published_version, d.published_at = "approved", "published", d.version, now
    else:
        if not comment.strip():
            raise ValidationFailed("退回时请写明理由", "Say why when you send it back", field="comment")
        a.state, d.state = "rejected", "draft"
    a.decided_by, a.decided_at, a.comment = actor.user_id, now, comment.strip()
    audit.record(
        session,
        actor,
        "dashboard.approve" if approve else "dashboard.reject",
        f"dashboard:{d.id}",
        version=d.version,
        numbers=len(a.numbers or []),
        comment=a.comment,
    )
    if a.requested_by is not None:
        notify.emit(
            session,
            "dashboard.approved" if approve else "dashboard.rejected",
            recipients=notify.to_users(a.requested_by),
            target=f"dashboard:{d.id}",
            title=d.title,
        )
    return a


def approval(session: Session, dashboard_id: int) -> DashboardApproval | None:
    """The approval the published version stands on."""
    return session.execute(
        select(DashboardApproval)
        .where(DashboardApproval.dashboard_id == dashboard_id, DashboardApproval.state == "approved")
        .order_by(DashboardApproval.id.desc())
        .limit(1)
    ).scalar()


# ------------------------------------------------------------------------------- public pages


class Withdrawn(NotFound):
    """A published dashboard whose source release is no longer released: off the public pages."""


_GONE = (
    "该看板暂不公开：其引用的出域结果已撤回，待修正并重新审批后恢复。",
    "This dashboard is not public for now: a result it shows was withdrawn; "
    "it returns once fixed and approved again.",
)


class PublicCache:
    """The public JSON of each published dashboard, keyed by (version, data_version).

    Why: the public pages are what delegations and phones load; rendering the same JSON for every
    visitor is wasted work.  Each request still reads the dashboard row (its state and versions)
    and, for dashboards with released tables, their release states — one indexed query each — so
    an edit or a withdrawn release takes effect on the next request, in every process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # keyed by (database, dashboard id): one process may serve several labs (tests, a county
        # server hosting a second lab), whose dashboards share ids
        self._items: dict[tuple[str, int], tuple[int, int, dict[str, Any]]] = {}

    def get(self, session: Session, slug: str) -> dict[str, Any]:
        d = session.execute(select(Dashboard).where(Dashboard.slug == slug)).scalar()
        if d is None or d.state != "published":
            raise NotFound("该看板不存在或未公开", "No such public dashboard", reason="not_public")
        key = (str(session.get_bind().engine.url), d.id)
        with self._lock:
            hit = self._items.get(key)
        if hit is None or hit[0] != d.version or hit[1] != d.data_version:
            payload = _public_payload(session, d)
            with self._lock:
                if len(self._items) > 256:
                    self._items.clear()
                self._items[key] = (d.version, d.data_version, payload)
        else:
            payload = hit[2]
        files = payload["_files"]
        if files and released_file_ids(session, files) != set(files):
            raise Withdrawn(*_GONE, reason="withdrawn")
        return payload


def _public_payload(session: Session, d: Dashboard) -> dict[str, Any]:
    ws = dashboards.widgets(session, d.id)
    a = approval(session, d.id)
    return {
        "slug": d.slug,
        "title": d.title,
        "description": d.description,
        "version": d.version,
        "published_at": d.published_at.isoformat() if d.published_at else None,
        "approved_at": a.decided_at.isoformat() if a and a.decided_at else None,
        "widgets": [{"id": w.id, "kind": w.kind, "title": w.title, "chart": w.chart} for w in ws if w.chart],
        "_files": sorted({int(w.source["file_id"]) for w in ws if w.source_kind == "release"}),
    }


def public_json(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if not k.startswith("_")}


def public_list(session: Session) -> list[Dashboard]:
    """Published dashboards whose releases are all still released (one query for the releases)."""
    ds = list(
        session.execute(
            select(Dashboard).where(Dashboard.state == "published").order_by(Dashboard.id)
        ).scalars()
    )
    if not ds:
        return []
    rel = session.execute(
        select(DashboardWidget.dashboard_id, DashboardWidget.source).where(
            DashboardWidget.dashboard_id.in_([d.id for d in ds]), DashboardWidget.source_kind == "release"
        )
    ).all()
    need: dict[int, set[int]] = {}
    for did, src in rel:
        need.setdefault(int(did), set()).add(int(src["file_id"]))
    ok = released_file_ids(session, sorted({f for s in need.values() for f in s}))
    return [d for d in ds if need.get(d.id, set()) <= ok]
