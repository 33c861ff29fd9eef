"""A small lab with the demo county's map: key sets, synthetic boundaries and feed points (through
the demo step), and a published story whose DP chart counts people by town, two towns left
without a value (drawn 无数据)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from countylab.catalog import service as catalog
from countylab.demo.geography import build_geography
from countylab.demo.sampling import rng_for
from countylab.demo_steps import DemoContext
from countylab.identity import projects
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM, Principal
from countylab.lab import Lab
from countylab.showcase import cache, stories
from countylab.showcase.chartspec import Chart, ChartKind, Series, Source, SourceKind
from countylab.showcase.demo_map import DEFAULT_SEED, seed_boundaries
from countylab.storage.models import User
from countylab.storage.showcase_models import StoryChart
from tests.support import create_user

MISSING = ("330729108", "330729109")  # 竹坞镇 and 枫林镇: no value released


@dataclass
class MapWorld:
    operator: int
    developer: int
    values: dict[str, float]
    town_names: dict[str, str]


def principal(lab: Lab, user_id: int) -> Principal:
    with lab.tx() as s:
        return ids.principal_for(s, s.execute(select(User).where(User.id == user_id)).scalar_one(), "test")


def build(lab: Lab, *, story: bool = True) -> MapWorld:
    cache.clear()
    geo = build_geography(rng_for(DEFAULT_SEED, "geography"))
    towns = dict(zip(geo.town_code, geo.town_name, strict=True))
    villages = dict(zip(geo.village_code, geo.village_name, strict=True))
    op = create_user(lab, "mapop", ["operator"], org="数据运营中心", kind="platform")
    dev = create_user(lab, "mapdev", ["developer"])
    with lab.tx() as s:
        catalog.upsert_key_set(
            s, SYSTEM, name="towns.town_code", title="乡镇", values=list(towns), labels=towns
        )
        catalog.upsert_key_set(
            s, SYSTEM, name="villages.village_code", title="村", values=list(villages), labels=villages
        )
    seed_boundaries(lab, DemoContext(users={"operator": op}, orgs={}, project_ids={}, steward=SYSTEM), print)
    values = add_story(lab, op, towns) if story else {}
    cache.clear()
    return MapWorld(op, dev, values, towns)


def add_story(lab: Lab, operator: int, towns: dict[str, str]) -> dict[str, float]:
    """A published story with a DP bar chart by town name (two towns without a value)."""
    values = {c: float(10 + 3 * i) for i, c in enumerate(towns) if c not in MISSING}
    actor = principal(lab, operator)
    with lab.tx() as s:
        prj = projects.create_project(s, actor, slug="elderly-map", title="独居老人分布")
        st = stories.save_story(s, actor, prj.id, title="独居老人分布", summary="按乡镇统计独居老人。")
        chart = Chart(
            ChartKind.bar,
            "各乡镇独居老人（测试）",
            Source(SourceKind.dp, "差分隐私统计（ε=0.5）", "query:1"),
            unit="人",
            categories=[towns[c] for c in values],
            series=[
                Series(
                    "独居老人",
                    list(values.values()),
                    low=[v - 4.5 for v in values.values()],
                    high=[v + 4.5 for v in values.values()],
                    texts=[f"{v:.0f}" for v in values.values()],
                )
            ],
        )
        s.add(StoryChart(story_id=st.id, position=1, source_kind="dp", query_id=1, chart=chart.to_dict()))
        stories.set_published(s, actor, prj.id, True)
    cache.clear()
    return values
