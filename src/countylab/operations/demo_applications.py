"""The demo county's data-use applications at different stages of the approval workflow, so that
every role finds work waiting when they log in:

====================  ==========================================  ===========================
who waits             application                                 stage
====================  ==========================================  ===========================
operator              助餐点服务半径评估 (developer)                材料预审
provider (民政局)      居家养老服务需求预测模型 (developer)          部门同意, overdue
steward               水稻单产遥感估测 (researcher)                 安全审查
leader                种植结构调整辅助分析 (researcher, industry)   终审
the public            独居老人助餐需求分析 (developer)              公示 (on /public/notices)
operator (agreement)  主要作物估产模型 (researcher)                 已批准, awaiting 协议签订
====================  ==========================================  ===========================

Every step is taken by the demo user who would take it, through the same services (permission
checks, audit, notifications).  Earlier applications are played back in time (``now`` of each
decision days ago), so that step times, a deadline already passed and a notice period already
over are real; the lab's clock is not touched.  The approved application's id is left in
``context.facts["application:approved"]`` for the agreement step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.identity import service as ids
from countylab.identity.access import Principal
from countylab.labels import BEIJING
from countylab.operations import applications, publicity, workflow
from countylab.operations.applications import COMMITMENTS, ApplicationInput, RequestedDataset
from countylab.operations.workflow import SecurityTerms
from countylab.storage.models import Dataset, Org, User
from countylab.storage.operations_models import Application

if TYPE_CHECKING:
    from countylab.demo_steps import DemoContext
    from countylab.lab import Lab

#: the demo provider of each department that has one (consents are theirs)
PROVIDERS = {"县民政局": "provider", "县农业农村局": "provider_agri"}
DECIDERS = {"security": "steward", "final": "leader"}


@dataclass(frozen=True)
class DemoApplication:
    key: str
    by: str  # developer | researcher
    scenario: str  # context.facts key suffix
    title: str
    datasets: tuple[str, ...]
    purpose: str
    channels: tuple[str, ...]
    outputs: str
    stop_at: str | None  # the step left open; None: through the notice
    days_ago: int  # when it was submitted
    conclude: bool = False  # end the (past) notice: approved


APPLICATIONS = (
    DemoApplication(
        "precheck",
        "developer",
        "elderly_care",
        "助餐点服务半径评估",
        ("elderly_care_records",),
        "public_good",
        ("dp_query",),
        "各助餐点 15 分钟服务半径内的需求人数（差分隐私统计，附区间）。",
        "precheck",
        1,
    ),
    DemoApplication(
        "consent",
        "developer",
        "elderly_care",
        "居家养老服务需求预测模型",
        ("elderly_care_records",),
        "public_good",
        ("sandbox_job", "dp_query"),
        "分乡镇、分服务类型的需求预测表及模型说明。",
        "consent",
        12,
    ),
    DemoApplication(
        "security",
        "researcher",
        "crop_yield",
        "水稻单产遥感估测",
        ("farmland_plots",),
        "public_good",
        ("sandbox_job",),
        "分乡镇水稻单产估计及误差范围。",
        "security",
        4,
    ),
    DemoApplication(
        "final",
        "researcher",
        "crop_yield",
        "种植结构调整辅助分析",
        ("farmland_plots",),
        "industry",
        ("sandbox_job", "dp_query"),
        "各乡镇主要作物种植结构与收益对比报告。",
        "final",
        6,
    ),
    DemoApplication(
        "notice",
        "developer",
        "elderly_care",
        "独居老人助餐需求分析",
        ("elderly_care_records",),
        "public_good",
        ("dp_query",),
        "独居老人助餐需求的乡镇分布（差分隐私统计）。",
        None,
        3,
    ),
    DemoApplication(
        "approved",
        "researcher",
        "crop_yield",
        "主要作物估产模型",
        ("farmland_plots",),
        "public_good",
        ("sandbox_job", "model_serving"),
        "分乡镇、分作物的单产与总产估计；估产模型在实验室内服务。",
        None,
        24,
        conclude=True,
    ),
)


def _principal(s: Session, context: DemoContext, username: str) -> Principal:
    user = s.execute(select(User).where(User.id == context.users[username])).scalar_one()
    return ids.principal_for(s, user, "session")


def _today(lab: Lab) -> date:
    return lab.clock().astimezone(BEIJING).date()


def seed_applications(lab: Lab, context: DemoContext, progress: Callable[[str], None]) -> None:
    progress("applications at every approval stage / 用数申请与审批")
    with lab.read() as s:
        names = {d.name: d.id for d in s.execute(select(Dataset)).scalars()}
        org_names = {o.id: o.name for o in s.execute(select(Org)).scalars()}
    for spec in APPLICATIONS:
        scenario_id = context.facts.get(f"scenario:{spec.scenario}")
        wanted = [names[n] for n in spec.datasets if n in names]
        if scenario_id is None or not wanted or spec.by not in context.users:
            continue
        app_id = _play(lab, context, spec, scenario_id, wanted, org_names)
        context.facts[f"application:{spec.key}"] = app_id
        if spec.conclude:
            context.facts["application:approved"] = app_id


def _play(
    lab: Lab,
    context: DemoContext,
    spec: DemoApplication,
    scenario_id: int,
    dataset_ids: list[int],
    org_names: dict[int, str],
) -> int:
    today = _today(lab)
    start = lab.clock() - timedelta(days=spec.days_ago)
    with lab.tx() as s:
        actor = _principal(s, context, spec.by)
        app = applications.create(
            s,
            actor,
            ApplicationInput(
                scenario_id=scenario_id,
                title=spec.title,
                purpose=spec.purpose,
                datasets=tuple(RequestedDataset(d) for d in dataset_ids),
                channels=spec.channels,
                starts_on=today + timedelta(days=7),
                ends_on=today + timedelta(days=372),
                expected_outputs=spec.outputs,
                commitments=tuple(COMMITMENTS),
            ),
            today=today,
        )
        applications.submit(s, actor, app.id, today=today)
        app.submitted_at = start  # played back: submitted days ago
        app_id = app.id
    if spec.stop_at == "precheck":
        return app_id
    at = start + timedelta(days=1)
    with lab.tx() as s:
        workflow.precheck(s, _principal(s, context, "operator"), app_id, "pass", "材料齐全，准予受理", now=at)
    for _ in range(8):  # decide the open steps, stage by stage, until the one left for its role
        at += timedelta(days=1)
        with lab.read() as s:
            open_steps = [
                (st.id, st.kind, st.org_id) for st in workflow.steps_of(s, app_id) if st.status == "open"
            ]
        todo = [x for x in open_steps if x[1] != spec.stop_at]
        if not todo:
            break
        for step_id, kind, org_id in todo:
            who = (
                PROVIDERS.get(org_names.get(org_id or 0, ""), "")
                if kind == "consent"
                else DECIDERS.get(kind, "")
            )
            if not who or who not in context.users:
                return app_id  # no demo user of that role here: leave it waiting
            with lab.tx() as s:
                terms = (
                    SecurityTerms(conditions="结果须按乡镇汇总，单元格不少于 10 户；模型不得输出个体预测。")
                    if kind == "security"
                    else None
                )
                reason = {"consent": "同意使用本部门数据", "final": "同意"}.get(kind, "")
                workflow.decide(
                    s, _principal(s, context, who), step_id, "approve", reason, now=at, terms=terms
                )
    if spec.conclude:
        with lab.read() as s:
            notice = publicity.notice_of(s, app_id)
            found = (notice.id, notice.ends_at) if notice is not None else None
        if found is not None:
            ended = found[1] if found[1].tzinfo else found[1].replace(tzinfo=UTC)
            with lab.tx() as s:
                row = s.get(Application, app_id)
                if row is not None and row.status == "publicising":  # the sweep's pass after the period
                    op = _principal(s, context, "operator")
                    publicity.conclude(s, op, found[0], now=min(ended + timedelta(hours=1), lab.clock()))
    return app_id
