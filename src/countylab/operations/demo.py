"""The demo county's scenario list: six scenarios, a pending proposal, three capabilities,
subscriptions and training records, written through the services as the right users (each
permission-checked and audited as if they had clicked).

Scenario ids are left in ``context.facts["scenario:<key>"]`` (elderly_care, crop_yield, traffic,
power, air_health, assistance) for the applications step that follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.identity import service as ids
from countylab.identity.access import SYSTEM, Principal
from countylab.labels import BEIJING
from countylab.operations import accreditation, capabilities, subscriptions
from countylab.operations import scenarios as sv
from countylab.operations.scenarios import Offer, ScenarioInput
from countylab.storage.models import Dataset, Org, User

if TYPE_CHECKING:
    from countylab.demo_steps import DemoContext
    from countylab.lab import Lab

ECONOMY_ORG = "县经济和信息化局"


@dataclass(frozen=True)
class DemoScenario:
    key: str
    by: str  # the demo user who publishes it
    org: str
    title: str
    problem: str
    outcome: str
    field: str
    datasets: tuple[tuple[str, tuple[str, ...] | None], ...]
    visibility: str = "public"
    window: tuple[int, int] = (-20, 70)  # days from today
    then: tuple[tuple[str, str], ...] = ()  # later status moves (status, reason)


SCENARIOS: tuple[DemoScenario, ...] = (
    DemoScenario(
        "elderly_care",
        "provider",
        "县民政局",
        "居家养老服务需求预测",
        "全县 60 岁以上老人约占常住人口四分之一，独居、高龄老人分布不均。民政局需要按乡镇预测未来三年"
        "助餐、助浴、上门护理等居家养老服务需求，合理布局助餐点和服务站，避免有的站点排队、有的站点闲置。",
        "分乡镇、分服务类型的需求预测（附区间），以及助餐点选址建议；成果经出域审核后用于年度养老服务规划。",
        "elderly_care",
        (
            ("elderly_care_records", None),
            ("residents", ("age", "gender", "household_id", "town_code")),
            ("households", ("household_size", "lives_alone", "town_code")),
        ),
    ),
    DemoScenario(
        "crop_yield",
        "provider_agri",
        "县农业农村局",
        "农作物估产",
        "每年秋收前，县里需要掌握水稻、玉米等主要作物的产量，用于粮食安全形势研判和种植结构调整。"
        "目前依赖逐级上报，时间晚、口径不一。希望基于地块种植、灌溉条件建立估产模型。",
        "分乡镇、分作物的单产与总产估计及误差范围；模型在实验室内服务，每年更新。",
        "agriculture",
        (("farmland_plots", None), ("towns", None)),
    ),
    DemoScenario(
        "traffic",
        "leader",
        "县交通运输局",
        "交通拥堵治理",
        "县城早晚高峰主干道拥堵明显，学校、医院周边尤甚。交通运输局希望识别拥堵时段和关键路口，"
        "评估信号配时调整和错峰措施的效果。",
        "关键路口的拥堵指数与时段分布、信号配时优化建议、措施前后对比评估。",
        "transport",
        (("traffic_counts", None),),
    ),
    DemoScenario(
        "power",
        "leader",
        ECONOMY_ORG,
        "企业用电与产能监测",
        "经信局需要及时掌握规上工业企业的生产经营状况，但月度报表滞后。希望结合市场主体登记信息，"
        "建立以用电等高频指标反映产能利用率的监测方法，及早发现停产、减产苗头。",
        "分行业、分乡镇的产能景气指数（差分隐私保护，不披露单个企业），每月更新。",
        "industry",
        (("enterprises", ("industry_code", "industry", "town_code", "employees", "entity_type")),),
    ),
    DemoScenario(
        "air_health",
        "operator",
        "县生态环境局",
        "空气质量与健康",
        "生态环境局与卫健部门关心 PM2.5、臭氧等污染物浓度升高时，呼吸系统疾病就诊是否随之增加，"
        "以便在重污染天气提前发布健康提示。",
        "污染物浓度与就诊量的滞后关联分析报告，以及重污染天气健康提示的触发阈值建议。",
        "ecology",
        (("air_quality", None),),
        window=(-90, -10),
        then=(("matched", "已与省农科院环境健康团队对接"), ("in_progress", "协议已签署，进入实施")),
    ),
    DemoScenario(
        "assistance",
        "provider",
        "县民政局",
        "困难群众精准救助",
        "低保、特困等救助对象的认定依赖申报，部分困难家庭未被及时发现。民政局希望在域内结合户籍、"
        "家庭结构等数据，识别可能需要主动关怀的家庭类型和区域（不识别到具体个人）。",
        "需主动排查的家庭类型画像与乡镇分布，供民政部门开展入户走访；仅限域内使用。",
        "social_assistance",
        (("households", None), ("residents", ("age", "gender", "household_id", "town_code"))),
        visibility="internal",
    ),
)

CAPABILITIES = (
    (
        "developer",
        "居家养老需求预测模型",
        "基于服务记录与人口结构的分区域需求预测，已在两个县试点；提供助餐点选址优化算法。",
        "elderly_care",
    ),
    (
        "developer",
        "助餐配送路径优化",
        "为助餐点到独居老人家中的配送规划路线，降低送餐时长。",
        "transport",
    ),
    (
        "researcher",
        "遥感与地块数据融合的作物估产",
        "融合卫星遥感植被指数与地块种植数据估计单产，省内多个县验证误差在 5% 以内。",
        "agriculture",
    ),
)


def _principal(s: Session, context: DemoContext, username: str) -> Principal:
    user = s.execute(select(User).where(User.id == context.users[username])).scalar_one()
    return ids.principal_for(s, user, "session")


def _today(lab: Lab) -> date:
    return lab.clock().astimezone(BEIJING).date()


def seed_scenarios(lab: Lab, context: DemoContext, progress: Callable[[str], None]) -> None:
    progress("publishing the scenario list / 发布场景清单")
    today = _today(lab)
    with lab.tx() as s:
        if s.execute(select(Org).where(Org.name == ECONOMY_ORG)).scalar_one_or_none() is None:
            context.orgs[ECONOMY_ORG] = ids.create_org(s, SYSTEM, name=ECONOMY_ORG, kind="department").id
        orgs = {o.name: o.id for o in s.execute(select(Org)).scalars()}
        datasets = {d.name: d for d in s.execute(select(Dataset)).scalars()}
        # subscribers first, so that they hear of the scenarios below
        subscriptions.subscribe(s, _principal(s, context, "developer"), ["elderly_care", "transport"])
        subscriptions.subscribe(s, _principal(s, context, "researcher"), ["agriculture", "ecology"])
        for who, passed, expires, cert in (
            ("developer", today - timedelta(days=120), today + timedelta(days=610), "QH-AQ-2026-031"),
            ("researcher", today - timedelta(days=40), today + timedelta(days=690), "QH-AQ-2026-047"),
            ("provider_agri", today - timedelta(days=800), today - timedelta(days=70), "QH-AQ-2024-012"),
        ):
            accreditation.record(
                s,
                _principal(s, context, "operator"),
                user_id=context.users[who],
                course="数据安全与隐私保护培训（含可用不可见操作规范）",
                certificate_no=cert,
                passed_on=passed,
                expires_on=expires,
            )
    for spec in SCENARIOS:
        offers = tuple(Offer(datasets[name].id, cols) for name, cols in spec.datasets if name in datasets)
        if not offers:
            continue
        with lab.tx() as s:
            actor = _principal(s, context, spec.by)
            sc = sv.publish(
                s,
                actor,
                ScenarioInput(
                    title=spec.title,
                    problem=spec.problem,
                    org_id=orgs[spec.org],
                    field=spec.field,
                    offers=offers,
                    expected_outcome=spec.outcome,
                    apply_from=today + timedelta(days=spec.window[0]),
                    apply_until=today + timedelta(days=spec.window[1]),
                    visibility=spec.visibility,
                ),
            )
            for status, reason in spec.then:
                sv.change_status(s, actor, sc.id, status, reason)
            context.facts[f"scenario:{spec.key}"] = sc.id
    with lab.tx() as s:
        dev = _principal(s, context, "developer")
        sv.propose(
            s,
            dev,
            ScenarioInput(
                title="社区助餐点选址优化",
                problem="部分社区助餐点距离独居老人住处较远，希望结合居家养老服务记录评估步行可达性，提出新增或调整选址建议。",
                org_id=orgs["县民政局"],
                field="elderly_care",
                offers=tuple(
                    Offer(datasets[n].id) for n in ("elderly_care_records", "villages") if n in datasets
                ),
                expected_outcome="各社区助餐点 15 分钟步行覆盖率与选址建议。",
            ),
        )
        for who, title, description, field in CAPABILITIES:
            capabilities.publish(
                s, _principal(s, context, who), title=title, description=description, field=field
            )
