"""The audit page's body and its CSV/XLSX exports (the page route itself stays in ``pages.py``).

An export is itself an audited event (``audit.export``, with the filter and the row count): who
took a copy of the log, and of which part, is exactly what an auditor later asks.  The event is
written in a short transaction of its own after the read, like the airlock's audited views.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit, labels
from countylab.audit import search
from countylab.export import content_disposition, table_to_csv, table_to_xlsx
from countylab.i18n import translator
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.lab import Lab
from countylab.storage.models import AuditEvent, Dataset, Project, User
from countylab.web.deps import Actor, LabDep
from countylab.web.ui.common import lang_of, render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def people_names(lab: Lab) -> dict[str, str]:
    """username → ``显示名 (username)`` for every user (the person column of pages and exports)."""
    with lab.read() as s:
        rows = s.execute(select(User.username, User.display_name)).all()
    return {r.username: labels.person(r.display_name, r.username) for r in rows}


def target_titles(s: Session, targets: list[str]) -> dict[str, str]:
    """Titles of the datasets and projects named by ``targets`` (two small queries per page)."""
    wanted: dict[str, set[int]] = {"dataset": set(), "project": set()}
    for target in targets:
        kind, _, ident = target.partition(":")
        if kind in wanted and ident.isdigit():
            wanted[kind].add(int(ident))
    out: dict[str, str] = {}
    if wanted["dataset"]:
        rows = s.execute(select(Dataset.id, Dataset.title).where(Dataset.id.in_(wanted["dataset"])))
        out |= {f"dataset:{i}": title for i, title in rows}
    if wanted["project"]:
        rows = s.execute(select(Project.id, Project.title).where(Project.id.in_(wanted["project"])))
        out |= {f"project:{i}": title for i, title in rows}
    return out


def action_options(lang: str, seen: list[str]) -> list[dict[str, Any]]:
    """The action filter: one group per family (selectable as a whole), its actions by name."""
    from countylab.i18n import catalog

    known = {k[len("audit.act.") :] for k in catalog(lang) if k.startswith("audit.act.")}
    by_group: dict[str, set[str]] = {}
    for action in known | set(seen):
        by_group.setdefault(labels.action_group(action), set()).add(action)
    order = [g for g in labels.ACTION_GROUPS if g in by_group] + sorted(
        set(by_group) - set(labels.ACTION_GROUPS)
    )
    return [
        {
            "value": search.GROUP_PREFIX + g,
            "label": labels.group_label(g, lang),
            "actions": sorted(
                ((a, labels.action_label(a, lang)) for a in by_group[g]), key=lambda pair: pair[1]
            ),
        }
        for g in order
    ]


def page(
    request: Request,
    lab: Lab,
    user: str,
    action: str,
    target: str,
    outcome: str,
    since: str,
    until: str,
    before: int | None,
) -> Response:
    lang = lang_of(request)
    f = search.AuditFilter.parse(
        actor=user, action=action, target=target, outcome=outcome, since=since, until=until
    )
    with lab.read() as s:
        events = search.find(s, f, limit=PAGE_SIZE, before_id=before)
        total = search.count(s, f)
        actors = search.actors(s)
        seen_actions = sorted(set(s.execute(select(AuditEvent.action).distinct()).scalars()))
        report = audit.verifier.verify_configured(s, lab.settings).summary()  # chain + signed checkpoints
        titles = target_titles(s, [e.target for e in events])
    names = people_names(lab)
    people = sorted(
        ((a, names.get(a) or labels.system_name(a, lang) or a) for a in set(actors) | set(names)),
        key=lambda pair: pair[1],
    )
    args = f.query_args()
    older = events[-1].id if len(events) == PAGE_SIZE else None
    return render(
        request,
        "audit.html",
        events=events,
        report=report,
        f=f,
        total=total,
        people=people,
        names=names,
        titles=titles,
        action_groups=action_options(lang, seen_actions),
        outcomes=search.OUTCOMES,
        older_url=f"/audit?{urlencode({**args, 'before': older})}" if older else None,
        newest_url=f"/audit?{urlencode(args)}" if before else None,
        export_query=urlencode(args),
    )


def export_response(
    lab: Lab, actor: Principal, lang: str, f: search.AuditFilter, fmt: str, via: str
) -> Response:
    """Build the file, then audit the export in a short transaction of its own."""
    with lab.read() as s:
        limit = search.EXPORT_MAX_XLSX_ROWS if fmt == "xlsx" else search.EXPORT_MAX_ROWS
        events = search.for_export(s, f, limit)
        titles = target_titles(s, [e.target for e in events])
    table = search.to_table(events, lang, people_names(lab), titles)
    headers = search.headers(lang)
    t = translator(lang)
    stamp = labels.bjtime(datetime.now(UTC), "%Y%m%d-%H%M")
    name = f"{t('auditlog.file_name')}-{stamp}.{fmt}"
    if fmt == "xlsx":
        filters = labels.details_text(_named_filter(f, lang), lang) or t("auditlog.no_filter")
        body = table_to_xlsx(
            table,
            headers,
            sheet=t("nav.audit"),
            title=f"{t('nav.audit')} · {stamp}",
            notes=[t("auditlog.export_note", filters=filters, n=len(events))],
        )
        media = XLSX_TYPE
    else:
        body, media = table_to_csv(table, headers), CSV_TYPE
    with lab.tx() as s:
        audit.record(
            s,
            actor,
            search.EXPORT_ACTION,
            "audit",
            format=fmt,
            count=len(events),
            filters=f.describe(),
            via=via,
        )
    return Response(body, media_type=media, headers={"Content-Disposition": content_disposition(name)})


def _named_filter(f: search.AuditFilter, lang: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in f.query_args().items():
        if key == "action":
            group = value[len(search.GROUP_PREFIX) :] if value.startswith(search.GROUP_PREFIX) else ""
            value = labels.group_label(group, lang) if group else labels.action_label(value, lang)
        elif key == "outcome":
            value = labels.label("outcome", value, lang)
        out[key] = value
    return out


def _filter_of(
    action: str = "", user: str = "", target: str = "", outcome: str = "", since: str = "", until: str = ""
) -> search.AuditFilter:
    """The page's filters as query parameters (shared by both exports)."""
    return search.AuditFilter.parse(
        actor=user, action=action, target=target, outcome=outcome, since=since, until=until
    )


Filters = Annotated[search.AuditFilter, Depends(_filter_of)]


@router.get("/audit/export.csv")
def export_csv(request: Request, actor: Actor, lab: LabDep, f: Filters) -> Response:
    authorize(actor, Permission.audit_read, target="audit")
    return export_response(lab, actor, lang_of(request), f, "csv", "page")


@router.get("/audit/export.xlsx")
def export_xlsx(request: Request, actor: Actor, lab: LabDep, f: Filters) -> Response:
    authorize(actor, Permission.audit_read, target="audit")
    return export_response(lab, actor, lang_of(request), f, "xlsx", "page")
