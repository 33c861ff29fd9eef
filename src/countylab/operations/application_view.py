"""An application as plain data (``app_view``): what the API returns, the CLI prints and the
detail page shows, the same everywhere.  People appear by display name (they are the lab's
users, not residents); datasets with their grade and owning department."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.operations import accreditation, applications, attachments
from countylab.operations import scenarios as scenario_service
from countylab.operations.applications import COMMITMENTS, PURPOSES
from countylab.operations.states import _STATUS_ZH, EDITABLE
from countylab.storage.models import Dataset, Org, User
from countylab.storage.operations_models import Application, ApplicationDataset, ApplicationMember, Scenario

_STATUS_EN = {
    "draft": "Draft",
    "submitted": "Submitted",
    "returned": "Returned",
    "in_review": "In review",
    "publicising": "Public notice",
    "approved": "Approved",
    "signing": "Signing",
    "authorised": "Authorised",
    "rejected": "Rejected",
    "withdrawn": "Withdrawn",
}

CHANNEL_NAMES = {
    "dp_query": ("差分隐私查询", "DP queries"),
    "sandbox_job": ("沙箱作业", "Sandbox jobs"),
    "model_serving": ("模型服务", "Model serving"),
}


def status_name(code: str, lang: str = "zh-CN") -> str:
    return (_STATUS_EN if lang.startswith("en") else _STATUS_ZH).get(code, code)


def summary(session: Session, app: Application, lang: str = "zh-CN") -> dict[str, Any]:
    sc = session.get(Scenario, app.scenario_id)
    org = session.get(Org, app.org_id)
    applicant = session.get(User, app.applicant_id)
    return {
        "id": app.id,
        "number": app.number,
        "title": app.title,
        "status": app.status,
        "status_name": status_name(app.status, lang),
        "status_reason": app.status_reason,
        "scenario_id": app.scenario_id,
        "scenario_title": sc.title if sc else "",
        "org_id": app.org_id,
        "organisation": org.name if org else "",
        "applicant_id": app.applicant_id,
        "applicant": applicant.display_name if applicant else "",
        "purpose": app.purpose,
        "purpose_name": applications.label(PURPOSES, app.purpose, lang) if app.purpose else "",
        "version": app.version,
        "renewal_of": app.renewal_of,
        "project_id": app.project_id,
        "submitted_at": app.submitted_at.isoformat() if app.submitted_at else None,
        "updated_at": app.updated_at.isoformat() if app.updated_at else None,
    }


def full(session: Session, app: Application, today: date, lang: str = "zh-CN") -> dict[str, Any]:
    """Everything submitted, with the flags the page shows (members without accreditation,
    what still stops a submission)."""
    out = summary(session, app, lang)
    rows = session.execute(
        select(ApplicationDataset, Dataset)
        .join(Dataset, Dataset.id == ApplicationDataset.dataset_id)
        .where(ApplicationDataset.application_id == app.id)
        .order_by(Dataset.id)
    ).all()
    owners = {o.id: o.name for o in session.execute(select(Org)).scalars()}
    out["datasets"] = [
        {
            "dataset_id": ds.id,
            "name": ds.name,
            "title": ds.title,
            "grade": ds.grade,
            "department": owners.get(ds.org_id, ""),
            "org_id": ds.org_id,
            "columns": list(ad.columns) if ad.columns is not None else None,
        }
        for ad, ds in rows
    ]
    members = session.execute(
        select(ApplicationMember, User)
        .join(User, User.id == ApplicationMember.user_id)
        .where(ApplicationMember.application_id == app.id)
        .order_by(ApplicationMember.role.desc(), User.id)
    ).all()
    member_list = []
    for m, u in members:
        acc = accreditation.current(session, u.id, today)
        last = acc or accreditation.latest(session, u.id)
        member_list.append(
            {
                "user_id": u.id,
                "username": u.username,
                "display_name": u.display_name,
                "role": m.role,
                "accredited": acc is not None,
                "accreditation_expires_on": last.expires_on.isoformat() if last else None,
            }
        )
    out["members"] = member_list
    out["channels"] = list(app.channels or [])
    out["channel_names"] = [applications.label(CHANNEL_NAMES, c, lang) for c in app.channels or []]
    out["starts_on"] = app.starts_on.isoformat() if app.starts_on else None
    out["ends_on"] = app.ends_on.isoformat() if app.ends_on else None
    out["expected_outputs"] = app.expected_outputs
    ticked = list((app.commitments or {}).get("items", []))
    out["commitments"] = {
        "items": ticked,
        "all": [
            {"code": c, "text": applications.label(COMMITMENTS, c, lang), "ticked": c in ticked}
            for c in COMMITMENTS
        ],
        "by_name": (app.commitments or {}).get("by_name"),
        "at": (app.commitments or {}).get("at"),
    }
    out["attachments"] = [
        {
            "id": a.id,
            "filename": a.filename,
            "sha256": a.sha256,
            "size": a.size,
            "uploaded_at": a.uploaded_at.isoformat() if a.uploaded_at else None,
        }
        for a in attachments.list_for(session, app.id)
    ]
    out["editable"] = app.status in EDITABLE
    out["problems"] = applications.problems(session, app, today, lang) if app.status in EDITABLE else []
    sc = session.get(Scenario, app.scenario_id)
    out["scenario_status"] = sc.status if sc else ""
    out["scenario_status_name"] = scenario_service.status_name(sc.status, lang) if sc else ""
    return out
