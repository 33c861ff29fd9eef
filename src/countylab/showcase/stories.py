"""Project stories (项目成果): the operator writes them in the lab, then publishes them.

A story names the scenario, the organisation, a summary of the outcome, and charts built only
from released tables or DP answers of *its own project* (:mod:`.charts`).  On the public pages a
chart appears only while its source is showable (a release still ``released``); a story with no
chart left still shows its words.  Every change is permission-checked (``showcase.manage``) and
audited in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.catalog import service as catalog
from countylab.errors import NotFound, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.showcase import charts, releases
from countylab.showcase.chartspec import Source, SourceKind
from countylab.storage.airlock_models import ReleaseFile, ReleaseRequest
from countylab.storage.models import Org, Project, utcnow
from countylab.storage.privacy_models import CachedAnswer, QueryRun
from countylab.storage.showcase_models import Story, StoryChart

STATES = ("draft", "published")


def _limit(text: str, n: int, what_zh: str, what_en: str) -> str:
    text = text.strip()
    if len(text) > n:
        raise ValidationFailed(
            f"{what_zh}过长（最多 {n} 字）", f"{what_en} too long ({n} characters at most)"
        )
    return text


def get_story(s: Session, project_id: int) -> Story | None:
    return s.execute(select(Story).where(Story.project_id == project_id)).scalar_one_or_none()


def _story(s: Session, project_id: int) -> Story:
    story = get_story(s, project_id)
    if story is None:
        raise NotFound("该项目还没有成果故事", "this project has no story yet", reason="no_story")
    return story


def save_story(
    s: Session,
    actor: Principal,
    project_id: int,
    *,
    title: str,
    summary: str,
    scenario_text: str = "",
    organisation: str = "",
    scenario_id: int | None = None,
) -> Story:
    authorize(actor, Permission.showcase_manage, target=f"project:{project_id}")
    project = s.get(Project, project_id)
    if project is None:
        raise NotFound(f"项目 {project_id} 不存在", f"project {project_id} not found")
    title = _limit(title, 200, "标题", "title") or project.title
    if not organisation.strip() and project.org_id:
        org = s.get(Org, project.org_id)
        organisation = org.name if org else ""
    story = get_story(s, project_id)
    created = story is None
    if story is None:
        story = Story(project_id=project_id, created_by=actor.user_id, state="draft", created_at=utcnow())
        s.add(story)
    story.title = title
    story.organisation = _limit(organisation, 200, "单位", "organisation")
    story.scenario_text = _limit(scenario_text, 2000, "场景说明", "scenario")
    story.summary = _limit(summary, 4000, "成果摘要", "summary")
    story.scenario_id = scenario_id
    story.updated_at = utcnow()
    s.flush()
    audit.record(s, actor, "showcase.story.save", f"story:{story.id}", project_id=project_id, created=created)
    return story


def _next_position(s: Session, story: Story) -> int:
    top = s.scalar(select(func.max(StoryChart.position)).where(StoryChart.story_id == story.id))
    return int(top or 0) + 1


def add_release_chart(
    s: Session,
    actor: Principal,
    project_id: int,
    file_id: int,
    *,
    kind: str,
    title: str = "",
    category_column: str = "",
    value_columns: list[str] | None = None,
    unit: str = "",
) -> StoryChart:
    """A chart of a released table of the story's own project."""
    authorize(actor, Permission.showcase_manage, target=f"project:{project_id}")
    story = _story(s, project_id)
    f = s.get(ReleaseFile, file_id)
    req = s.get(ReleaseRequest, f.request_id) if f is not None else None
    if f is None or req is None or not releases.showable(req) or f.released_path is None:
        raise NotFound("该文件未出域", "that file has not been released", reason="not_released")
    if req.project_id != project_id:
        raise ValidationFailed(
            "只能展示本项目的出域成果", "a story shows only its own project's released results"
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
    row = StoryChart(
        story_id=story.id,
        position=_next_position(s, story),
        source_kind="release",
        request_id=req.id,
        file_id=f.id,
        chart=chart.to_dict(),
        created_at=utcnow(),
    )
    s.add(row)
    s.flush()
    audit.record(
        s, actor, "showcase.story.chart_add", f"story:{story.id}", request_id=req.id, file_id=f.id, kind=kind
    )
    return row


def add_dp_chart(
    s: Session,
    actor: Principal,
    project_id: int,
    query_id: int,
    *,
    title: str,
    category_column: str,
    value_column: str,
    unit: str = "",
) -> StoryChart:
    """A chart of a DP answer the project's analysts already received (charged to its budget)."""
    authorize(actor, Permission.showcase_manage, target=f"project:{project_id}")
    story = _story(s, project_id)
    run = s.get(QueryRun, query_id)
    if run is None or run.project_id != project_id or run.mode != "dp":
        raise NotFound("该项目没有这个差分隐私查询", "no such DP query in this project", reason="no_query")
    cached = s.execute(
        select(CachedAnswer).where(
            CachedAnswer.project_id == project_id, CachedAnswer.fingerprint == run.fingerprint
        )
    ).scalar_one_or_none()
    if cached is None or not cached.answer or "rows" not in cached.answer:
        raise NotFound("该查询没有可展示的结果", "the query has no answer to show", reason="no_answer")
    labels: dict[str, str] = {}
    for ks in catalog.key_sets(s).values():
        labels.update(ks.labels or {})
    when = (run.finished_at or run.created_at).isoformat()
    source = Source(SourceKind.dp, f"差分隐私统计（ε={run.epsilon_spent:g}）", f"query:{run.id}", when)
    chart = charts.from_dp_answer(
        cached.answer,
        title=title,
        source=source,
        category_column=category_column,
        value_column=value_column,
        labels=labels,
        unit=unit,
        note="误差线为 95% 区间",  # stored with the chart, like its Chinese source label
    )
    row = StoryChart(
        story_id=story.id,
        position=_next_position(s, story),
        source_kind="dp",
        query_id=run.id,
        chart=chart.to_dict(),
        created_at=utcnow(),
    )
    s.add(row)
    s.flush()
    audit.record(s, actor, "showcase.story.chart_add", f"story:{story.id}", query_id=run.id, kind="bar")
    return row


def remove_chart(s: Session, actor: Principal, project_id: int, chart_id: int) -> None:
    authorize(actor, Permission.showcase_manage, target=f"project:{project_id}")
    story = _story(s, project_id)
    row = s.get(StoryChart, chart_id)
    if row is None or row.story_id != story.id:
        raise NotFound("图表不存在", "chart not found")
    s.delete(row)
    audit.record(s, actor, "showcase.story.chart_remove", f"story:{story.id}", chart_id=chart_id)


def set_published(s: Session, actor: Principal, project_id: int, published: bool) -> Story:
    authorize(actor, Permission.showcase_manage, target=f"project:{project_id}")
    story = _story(s, project_id)
    if published and not story.summary.strip():
        raise ValidationFailed("发布前请写成果摘要", "write the summary before publishing", reason="summary")
    story.state = "published" if published else "draft"
    story.published_at = utcnow() if published else None
    audit.record(
        s, actor, "showcase.story.publish" if published else "showcase.story.unpublish", f"story:{story.id}"
    )
    return story


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartView:
    id: int
    source_kind: str
    spec: dict[str, Any]
    record: releases.ReleaseRecord | None  # the release it came from (release charts)
    showable: bool


def chart_views(s: Session, story: Story) -> list[ChartView]:
    rows = s.execute(
        select(StoryChart).where(StoryChart.story_id == story.id).order_by(StoryChart.position, StoryChart.id)
    ).scalars()
    out: list[ChartView] = []
    for row in rows:
        record = None
        ok = True
        if row.source_kind == "release":
            req = s.get(ReleaseRequest, row.request_id) if row.request_id else None
            ok = releases.showable(req)
            record = releases.record(s, req) if req is not None and ok else None
        out.append(ChartView(row.id, row.source_kind, dict(row.chart), record, ok))
    return out


def list_stories(s: Session, *, published_only: bool) -> list[Story]:
    q = select(Story).order_by(Story.published_at.desc(), Story.id.desc())
    if published_only:
        q = q.where(Story.state == "published")
    return list(s.execute(q).scalars())


def public_story(s: Session, project_id: int) -> tuple[Story, list[ChartView]]:
    """A published story with only its showable charts (NotFound for drafts)."""
    story = get_story(s, project_id)
    if story is None or story.state != "published":
        raise NotFound("该项目成果不存在或未发布", "no published story for this project", reason="no_story")
    return story, [c for c in chart_views(s, story) if c.showable]
