"""The disclosure report (授权信息披露): who was authorised to use which data, how, and why.

Public-data authorised operation is trusted only if it is visible: the report lists, per period,
the authorisations in force (organisation, scenario, datasets, channels, purpose, term, status),
every emergency grant with its reason, the lab's system-internal grants with their note, and
every suspension, revocation and expiry.  It reads only; the Excel export is audited by the route.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.operations import authorisations as auths
from countylab.operations.agreement_terms import PURPOSE_ZH, channels_zh
from countylab.storage.authorisation_models import Authorisation, AuthorisationEvent, GrantTerms
from countylab.storage.models import Dataset, Org, Project, User
from countylab.storage.operations_models import Application

_BEIJING = ZoneInfo("Asia/Shanghai")
EVENT_ZH = {"suspended": "暂停", "resumed": "恢复", "revoked": "撤销", "expired": "到期"}


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @classmethod
    def of(cls, start: date | None, end: date | None, *, today: date) -> Period:
        end = end or today
        start = start or date(end.year, 1, 1)
        if start > end:
            start, end = end, start
        return cls(start, end)

    def bounds(self) -> tuple[datetime, datetime]:
        return (
            datetime.combine(self.start, time.min, _BEIJING),
            datetime.combine(self.end + timedelta(days=1), time.min, _BEIJING),
        )


def report(session: Session, actor: Principal, period: Period) -> dict[str, Any]:
    authorize(actor, Permission.ops_report, target="disclosure")
    lo, hi = period.bounds()
    in_force = session.execute(
        select(Authorisation)
        .where(Authorisation.starts_on <= period.end, Authorisation.ends_on >= period.start)
        .order_by(Authorisation.starts_on, Authorisation.id)
    ).scalars()
    rows = []
    for a in in_force:
        v = auths.view(session, a)
        rows.append(
            {
                "id": a.id,
                "org": v["org_name"],
                "scenario": v["scenario_title"],
                "application": v["application_number"],
                "project": v["project_title"],
                "datasets": "、".join(d["title"] for d in v["datasets"]),
                "channels": channels_zh(a.channels),
                "purpose": PURPOSE_ZH.get(a.purpose, a.purpose),
                "term": f"{a.starts_on} 至 {a.ends_on}",
                "status": auths.STATUS_ZH[a.status],
            }
        )
    direct = session.execute(
        select(GrantTerms, Project, Dataset, User)
        .outerjoin(Project, Project.id == GrantTerms.project_id)
        .outerjoin(Dataset, Dataset.id == GrantTerms.dataset_id)
        .outerjoin(User, User.id == GrantTerms.granted_by)
        .where(
            GrantTerms.kind.in_(("emergency", "system")),
            GrantTerms.granted_at >= lo,
            GrantTerms.granted_at < hi,
        )
        .order_by(GrantTerms.granted_at)
    ).all()
    emergency: list[dict[str, str]] = []
    system: list[dict[str, str]] = []
    for gt, project, ds, user in direct:
        item = {
            "granted_at": gt.granted_at.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M"),
            "project": project.title if project else f"#{gt.project_id}（已删除）",
            "org": _org(session, project),
            "dataset": ds.title if ds else f"#{gt.dataset_id}",
            "reason": gt.reason,
            "ends_on": gt.ends_on.isoformat() if gt.ends_on else "",
            "by": user.display_name if user else "系统",
        }
        (emergency if gt.kind == "emergency" else system).append(item)
    changes = session.execute(
        select(AuthorisationEvent, Authorisation, User)
        .join(Authorisation, Authorisation.id == AuthorisationEvent.authorisation_id)
        .outerjoin(User, User.id == AuthorisationEvent.actor_id)
        .where(
            AuthorisationEvent.kind.in_(tuple(EVENT_ZH)),
            AuthorisationEvent.at >= lo,
            AuthorisationEvent.at < hi,
        )
        .order_by(AuthorisationEvent.at)
    ).all()
    events = []
    for e, a, user in changes:
        app = session.get(Application, a.latest_application_id)
        org = session.get(Org, a.org_id)
        events.append(
            {
                "at": e.at.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M"),
                "kind": EVENT_ZH[e.kind],
                "application": app.number if app else "",
                "org": org.name if org else "",
                "reason": e.reason,
                "by": user.display_name if user else "系统",
            }
        )
    return {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "authorisations": rows,
        "emergency_grants": emergency,
        "system_grants": system,
        "changes": events,
    }


def _org(session: Session, project: Project | None) -> str:
    if project is None or project.org_id is None:
        return ""
    org = session.get(Org, project.org_id)
    return org.name if org else ""


_SHEETS = (
    (
        "authorisations",
        "授权",
        (
            ("org", "被授权单位"),
            ("scenario", "场景"),
            ("application", "申请编号"),
            ("project", "项目"),
            ("datasets", "数据集"),
            ("channels", "使用方式"),
            ("purpose", "用途类型"),
            ("term", "授权期限"),
            ("status", "状态"),
        ),
    ),
    (
        "emergency_grants",
        "紧急授权",
        (
            ("granted_at", "授权时间"),
            ("project", "项目"),
            ("org", "单位"),
            ("dataset", "数据集"),
            ("reason", "理由"),
            ("ends_on", "结束日期"),
            ("by", "授权人"),
        ),
    ),
    (
        "system_grants",
        "系统内部授权",
        (("granted_at", "授权时间"), ("project", "项目"), ("dataset", "数据集"), ("reason", "说明")),
    ),
    (
        "changes",
        "暂停撤销与到期",
        (
            ("at", "时间"),
            ("kind", "事项"),
            ("application", "申请编号"),
            ("org", "单位"),
            ("reason", "理由"),
            ("by", "操作人"),
        ),
    ),
)


def to_xlsx(data: dict[str, Any]) -> bytes:
    """One sheet per section, a title row naming the period; text cells guarded against formulas."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from countylab.export import guard_text

    wb = Workbook()
    wb.remove(wb.active)
    period = data["period"]
    for key, title, cols in _SHEETS:
        ws = wb.create_sheet(title)
        ws.append([f"授权信息披露 {period['start']} 至 {period['end']}：{title}"])
        ws["A1"].font = Font(bold=True)
        ws.append([zh for _k, zh in cols])
        for cell in ws[2]:
            cell.font = Font(bold=True)
        for row in data[key]:
            ws.append([guard_text(str(row[k])) for k, _zh in cols])
        for i, (_k, zh) in enumerate(cols):
            ws.column_dimensions[chr(ord("A") + i)].width = max(12, len(zh) * 2 + 4)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def record_export(session: Session, actor: Principal, data: dict[str, Any], fmt: str) -> None:
    """An export leaves the lab as a file: audited like the other exports."""
    p = data["period"]
    audit.record(
        session,
        actor,
        "disclosure.export",
        "disclosure",
        start=p["start"],
        end=p["end"],
        format=fmt,
        authorisations=len(data["authorisations"]),
        emergency_grants=len(data["emergency_grants"]),
    )
