"""The demo county's dashboards and big screen (``seed_dashboards``, the LAST demo step).

青禾县养老服务概览: the county map of older people living alone by town (a DP metric charged to
the showcase budget), figure cards, a bar chart with interval whiskers, the elderly-care model's
released evaluation table (engineer D's demo release, when that step ran) and an open-data line of
daily air quality.  交通与环境: open data only (air quality and junction traffic).  The operator
composes and submits both, the security officer approves them (four eyes), and the leader's big
screen rotates through the two.  Everything goes through the services a user's request would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from countylab.identity import service as ids
from countylab.showcase import bigscreen, dashboards, metrics, publication
from countylab.showcase.widgets import WidgetSpec
from countylab.storage.airlock_models import ReleaseFile
from countylab.storage.models import Dataset

if TYPE_CHECKING:
    from countylab.demo_steps import DemoContext
    from countylab.identity.access import Principal
    from countylab.lab import Lab

ALONE_BY_TOWN = (
    "SELECT town_code, COUNT(*) AS n FROM residents WHERE lives_alone AND age >= 60 GROUP BY town_code"
)
ALONE_80 = "SELECT COUNT(*) AS n FROM residents WHERE lives_alone AND age >= 80"
ELDERLY_SLUG = "elderly-care"
TRAFFIC_SLUG = "traffic-environment"


def _principal(lab: Lab, user_id: int) -> Principal:
    with lab.read() as s:
        return ids.principal_for(s, ids.get_user(s, user_id), "session")


def _ids(lab: Lab) -> dict[str, int]:
    with lab.read() as s:
        return {d.name: d.id for d in s.execute(select(Dataset)).scalars()}


def _release_file(lab: Lab, request_id: int | None) -> int | None:
    if request_id is None:
        return None
    with lab.read() as s:
        f = s.execute(
            select(ReleaseFile).where(ReleaseFile.request_id == request_id).order_by(ReleaseFile.id)
        ).scalars()
        return next((x.id for x in f if x.name.lower().endswith(".csv")), None)


def elderly_widgets(
    ds: dict[str, int], alone: int, alone80: int, release_file: int | None
) -> list[WidgetSpec]:
    aq = ds["air_quality"]
    out = [
        WidgetSpec(
            "map", "各镇（街道）独居老人（60岁以上）", "dp", {"metric_id": alone, "level": "town"}, "人"
        ),
        WidgetSpec("card", "80岁以上独居老人", "dp", {"metric_id": alone80}, "人"),
        WidgetSpec("card", "乡镇（街道）", "open", {"dataset_id": ds["towns"], "aggregate": "count"}, "个"),
        WidgetSpec("bar", "独居老人（95% 区间）", "dp", {"metric_id": alone}, "人"),
        WidgetSpec(
            "line",
            "空气质量指数（日均）",
            "open",
            {
                "dataset_id": aq,
                "group_by": "hour",
                "bucket": "day",
                "value": "aqi",
                "aggregate": "avg",
                "last": 14,
            },
            "AQI",
        ),
    ]
    if release_file is not None:
        out.insert(
            3, WidgetSpec("table", "养老服务需求模型评估（已出域）", "release", {"file_id": release_file})
        )
    return out


def traffic_widgets(ds: dict[str, int]) -> list[WidgetSpec]:
    aq, tc = ds["air_quality"], ds["traffic_counts"]
    day = {"group_by": "hour", "bucket": "day", "aggregate": "avg", "last": 14}
    hour = {"group_by": "hour", "bucket": "hour", "aggregate": "avg", "last": 24}
    return [
        WidgetSpec(
            "card", "空气质量指数（最近一日均值）", "open", {"dataset_id": aq, "value": "aqi", **day}, "AQI"
        ),
        WidgetSpec(
            "card",
            "路口平均车速（最近一日）",
            "open",
            {"dataset_id": tc, "value": "avg_speed_kmh", **day},
            "公里/小时",
        ),
        WidgetSpec(
            "line",
            "PM2.5 浓度（近24小时）",
            "open",
            {"dataset_id": aq, "value": "pm25", **hour},
            "微克/立方米",
        ),
        WidgetSpec(
            "bar",
            "各镇PM2.5均值",
            "open",
            {"dataset_id": aq, "group_by": "town_code", "value": "pm25", "aggregate": "avg"},
            "微克/立方米",
        ),
        WidgetSpec(
            "map",
            "各镇路口小时车流量均值",
            "open",
            {
                "dataset_id": tc,
                "group_by": "town_code",
                "value": "vehicles",
                "aggregate": "avg",
                "level": "town",
            },
            "辆",
        ),
        WidgetSpec(
            "line",
            "路口小时车流量（近24小时）",
            "open",
            {"dataset_id": tc, "value": "vehicles", **hour},
            "辆",
        ),
    ]


def compose(
    lab: Lab, composer: Principal, slug: str, title: str, description: str, specs: list[WidgetSpec]
) -> int:
    with lab.tx() as s:
        d = dashboards.create(s, composer, slug=slug, title=title, description=description)
        for spec in specs:
            dashboards.add_widget(s, composer, lab.ingestion, d.id, spec)
        return d.id


def publish(lab: Lab, composer: Principal, approver: Principal, board: int) -> None:
    with lab.tx() as s:
        version = publication.submit(s, composer, board).version
    with lab.tx() as s:
        publication.decide(
            s, approver, board, approve=True, version=version, comment="数字均已核对，同意公开"
        )


def seed_dashboards(lab: Lab, context: DemoContext, progress: Callable[[str], None]) -> None:
    progress("看板与驾驶舱…")
    operator = _principal(lab, context.users["operator"])
    steward = context.steward
    ds = _ids(lab)
    with lab.tx() as s:
        alone = metrics.create(
            s,
            steward,
            name="alone_by_town",
            title="独居老人（60岁以上）",
            sql=ALONE_BY_TOWN,
            epsilon=0.5,
            schedule="daily",
            gateway=lab.gateway,
        ).id
        alone80 = metrics.create(
            s,
            steward,
            name="alone_80",
            title="80岁以上独居老人",
            sql=ALONE_80,
            epsilon=0.5,
            schedule="weekly",
            gateway=lab.gateway,
        ).id
    for mid in (alone, alone80):
        out: dict[str, Any] = metrics.refresh(lab, steward, mid)
        if out["stale"]:
            raise RuntimeError(f"demo metric {mid} refused: {out['stale_reason_en']}")
    release = _release_file(lab, context.facts.get("release:elderly_metrics"))
    elderly = compose(
        lab,
        operator,
        ELDERLY_SLUG,
        "青禾县养老服务概览",
        "独居老人分布（差分隐私统计，附 95% 区间）、养老服务需求模型的评估结果（已出域）"
        "和空气质量（开放数据）。",
        elderly_widgets(ds, alone, alone80, release),
    )
    traffic = compose(
        lab,
        operator,
        TRAFFIC_SLUG,
        "交通与环境",
        "路口交通流量和空气质量监测（开放数据，每小时更新）。",
        traffic_widgets(ds),
    )
    for board in (elderly, traffic):
        publish(lab, operator, steward, board)
    with lab.tx() as s:
        screen = bigscreen.create(
            s, operator, title="领导驾驶舱", dashboard_ids=[elderly, traffic], seconds=20
        )
    context.facts["dashboard:elderly"] = elderly
    context.facts["dashboard:traffic"] = traffic
    context.facts["bigscreen"] = screen.id
