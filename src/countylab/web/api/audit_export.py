"""``GET /api/audit/export``: the audit log, filtered, as CSV (with BOM) or XLSX.

The same filter as ``GET /api/audit`` and the audit page (see :mod:`countylab.audit.search`);
the file and the audited ``audit.export`` event are made by the page's own code, so the API and
the page cannot drift apart.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from countylab.audit import search
from countylab.identity.access import authorize
from countylab.identity.roles import Permission
from countylab.web.deps import Actor, LabDep
from countylab.web.ui.audit_view import XLSX_TYPE, export_response
from countylab.web.ui.common import lang_of

router = APIRouter(prefix="/api", tags=["audit"])


@router.get(
    "/audit/export",
    responses={200: {"content": {"text/csv": {}, XLSX_TYPE: {}}}},
)
def export_audit(
    request: Request,
    actor: Actor,
    lab: LabDep,
    format: Literal["csv", "xlsx"] = "csv",
    action: str | None = None,
    user: str | None = None,
    target: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Response:
    """Matching events oldest first, named in the caller's language, times in Beijing time (audited)."""
    authorize(actor, Permission.audit_read, target="audit")
    f = search.AuditFilter.parse(
        actor=user, action=action, target=target, outcome=outcome, since=since, until=until
    )
    return export_response(lab, actor, lang_of(request), f, format, "api")
