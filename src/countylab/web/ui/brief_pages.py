"""Printed briefs (汇报材料) as downloads: a dashboard or a project story as an A4 PDF.

Four GETs, two audiences, the same rule as the pages they print: a brief holds exactly what its
page may show.

* ``/public/dashboards/{slug}/brief.pdf`` — a published dashboard, from the approved widgets
  (the public cache); a dashboard whose release was withdrawn is 404 here as on its page;
* ``/public/projects/{project_id}/brief.pdf`` — a published story with its showable charts;
* ``/dashboards/{dashboard_id}/brief.pdf`` and ``/showcase/stories/{project_id}/brief.pdf`` —
  the in-lab views (``showcase.view``): a dashboard as its lab page shows it (marked with its
  state and version), a story's showable charts even before it is published.

``?lang=en`` prints the English brief.  A PDF takes a second or two to lay out, so public briefs
are kept for a few minutes per (content version, language): a crowd of visitors costs one
rendering, and a new version or a withdrawn release is printed on the next request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.i18n import translator
from countylab.identity.access import authorize
from countylab.identity.roles import Permission
from countylab.labels import bjtime
from countylab.showcase import briefs, dashboards, maps, publication, stories
from countylab.showcase.chartspec import Chart, ChartKind
from countylab.storage.dashboard_models import ShowcaseMetric
from countylab.web.api.dashboards import PUBLIC
from countylab.web.deps import Actor, LabDep, MaybeActor
from countylab.web.params import Id
from countylab.web.ui.common import lang_of

router = APIRouter(include_in_schema=False)

Lang = Annotated[str | None, Query(pattern="^(zh-CN|en)$", description="language of the brief")]
#: how long a public brief is reused for the same content version and language
CACHE_S = 300.0
_cache: dict[tuple[Any, ...], tuple[float, bytes, str]] = {}
_cache_lock = threading.Lock()


def _hit(key: tuple[Any, ...]) -> tuple[bytes, str] | None:
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < CACHE_S:
        return hit[1], hit[2]
    return None


def _store(key: tuple[Any, ...], value: tuple[bytes, str]) -> tuple[bytes, str]:
    with _cache_lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = (time.monotonic(), *value)
    return value


def _pdf(pdf: bytes, name: str) -> Response:
    """Inline, so the browser's viewer opens it (print from there); named for the download."""
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f"inline; filename=\"brief.pdf\"; filename*=UTF-8''{quote(name)}",
            "Cache-Control": "private, max-age=60",
        },
    )


def _charts(specs: Iterable[dict[str, Any] | None]) -> list[Chart]:
    return [publication.chart_of(spec) for spec in specs if spec]


def _boundaries(s: Session, charts: list[Chart]) -> dict[str, dict[str, Any]]:
    """The county's GeoJSON for each map level the brief draws (read once per level)."""
    levels = {c.level for c in charts if c.kind == ChartKind.map}
    return {level: maps.boundaries(s, level) for level in sorted(levels)}


def _epsilons(s: Session, charts: list[Chart]) -> dict[str, str]:
    """ε of each showcase metric a DP chart comes from, unless its label already says it."""
    ids = {
        int(c.source.ref.split(":", 1)[1])
        for c in charts
        if c.source.ref.startswith("metric:") and "ε" not in c.source.label and c.source.ref[7:].isdigit()
    }
    if not ids:
        return {}
    rows = s.execute(select(ShowcaseMetric.id, ShowcaseMetric.epsilon).where(ShowcaseMetric.id.in_(ids)))
    return {f"metric:{i}": f"ε = {eps:g}" for i, eps in rows}


Prepared = tuple[briefs.Brief, dict[str, dict[str, Any]]]


def _render(prepared: Prepared, lang: str) -> tuple[bytes, str]:
    """Lay the brief out (1-3 s of CPU): called after the read session is closed."""
    brief, boundaries = prepared
    return briefs.render(brief, lang=lang, boundaries=boundaries), briefs.filename(brief, lang)


def _dashboard_brief(
    lab: Any, s: Session, d: dict[str, Any], specs: list[dict[str, Any] | None], lang: str, *, public: bool
) -> Prepared:
    t = translator(lang)
    charts = _charts(specs)
    facts: list[tuple[str, str]] = [(t("brief.fact.version"), f"v{d['version']}")]
    if d.get("approved_at"):
        facts.append((t("brief.fact.approved"), bjtime(d["approved_at"], lang=lang)))
    if not public:
        facts.append((t("brief.fact.state"), t(f"dash.state.{d.get('state', 'draft')}")))
    brief = briefs.Brief(
        county=lab.settings.county_name,
        title=d["title"],
        kind="dashboard",
        charts=charts,
        summary=d.get("description") or "",
        facts=facts,
        source_details=_epsilons(s, charts),
        issued_at=datetime.now(UTC),
        reference=f"/public/dashboards/{d['slug']}" if public else f"/dashboards/{d['id']}",
    )
    return brief, _boundaries(s, charts)


def _story_brief(
    lab: Any, s: Session, story: Any, views: list[stories.ChartView], lang: str, *, public: bool
) -> Prepared:
    t = translator(lang)
    charts = _charts(v.spec for v in views if v.showable)
    facts: list[tuple[str, str]] = []
    if story.organisation:
        facts.append((t("brief.fact.organisation"), story.organisation))
    if story.scenario_text:
        facts.append((t("brief.fact.scenario"), story.scenario_text))
    if story.published_at:
        facts.append((t("brief.fact.published"), bjtime(story.published_at, lang=lang)))
    elif not public:
        facts.append((t("brief.fact.state"), t("brief.state.draft")))
    brief = briefs.Brief(
        county=lab.settings.county_name,
        title=story.title,
        kind="story",
        charts=charts,
        summary=story.summary or "",
        facts=facts,
        source_details=_epsilons(s, charts),
        issued_at=datetime.now(UTC),
        reference=f"/public/projects/{story.project_id}"
        if public
        else f"/showcase/stories/{story.project_id}",
    )
    return brief, _boundaries(s, charts)


@router.get("/public/dashboards/{slug}/brief.pdf")
def public_dashboard_brief(
    request: Request,
    slug: Annotated[str, Path(max_length=64)],
    lab: LabDep,
    actor: MaybeActor,
    lang: Lang = None,
) -> Response:
    language = lang or lang_of(request)
    with lab.read() as s:
        payload = PUBLIC.get(s, slug)  # 404 unless published; Withdrawn (404) when a release was withdrawn
        key = (
            "dashboard",
            str(lab.settings.data_dir),
            id(lab),
            slug,
            payload["version"],
            payload.get("approved_at"),
            language,
        )
        hit = _hit(key)
        if hit is None:
            d = publication.public_json(payload)
            prepared = _dashboard_brief(lab, s, d, [w["chart"] for w in d["widgets"]], language, public=True)
    return _pdf(*(hit or _store(key, _render(prepared, language))))


@router.get("/public/projects/{project_id}/brief.pdf")
def public_story_brief(
    request: Request, project_id: Id, lab: LabDep, actor: MaybeActor, lang: Lang = None
) -> Response:
    language = lang or lang_of(request)
    with lab.read() as s:
        story, views = stories.public_story(s, project_id)  # 404 for drafts; only showable charts
        key = (
            "story",
            str(lab.settings.data_dir),
            id(lab),
            project_id,
            str(story.updated_at),
            tuple(v.id for v in views),
            language,
        )
        hit = _hit(key)
        if hit is None:
            prepared = _story_brief(lab, s, story, views, language, public=True)
    return _pdf(*(hit or _store(key, _render(prepared, language))))


@router.get("/dashboards/{dashboard_id}/brief.pdf")
def dashboard_brief(
    request: Request, dashboard_id: Id, actor: Actor, lab: LabDep, lang: Lang = None
) -> Response:
    authorize(actor, Permission.showcase_view, target=f"dashboard:{dashboard_id}")
    language = lang or lang_of(request)
    with lab.read() as s:
        d = dashboards.view(s, dashboard_id)
        d["approved_at"] = (
            (d.get("approval") or {}).get("decided_at") if d.get("state") == "published" else None
        )
        prepared = _dashboard_brief(lab, s, d, [w.get("chart") for w in d["items"]], language, public=False)
    return _pdf(*_render(prepared, language))


@router.get("/showcase/stories/{project_id}/brief.pdf")
def story_brief(request: Request, project_id: Id, actor: Actor, lab: LabDep, lang: Lang = None) -> Response:
    authorize(actor, Permission.showcase_view, target=f"project:{project_id}")
    language = lang or lang_of(request)
    with lab.read() as s:
        story = stories.get_story(s, project_id)
        if story is None:
            from countylab.errors import NotFound

            raise NotFound(f"项目 {project_id} 还没有成果介绍", f"project {project_id} has no story yet")
        prepared = _story_brief(lab, s, story, stories.chart_views(s, story), language, public=False)
    return _pdf(*_render(prepared, language))
