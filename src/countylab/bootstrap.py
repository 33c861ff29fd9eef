"""Setting up a lab: the first admin (``countylab init``) and the demo county (``countylab demo``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from countylab.errors import ValidationFailed
from countylab.identity import projects as prj
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.storage.models import Org, User

DEMO_PASSWORD = "Demo@2026"  # noqa: S105 - the published demo password, shown on the login page
PLATFORM_ORG = "县大数据中心"


def init_lab(lab: Lab, *, admin_username: str, admin_password: str) -> bool:
    """Migrate and create the platform organisation and first admin; False if users exist."""
    lab.migrate()
    if lab.has_users():
        return False
    if not admin_password:
        raise ValidationFailed("需要管理员密码", "An admin password is required")
    with lab.tx() as s:
        org = ids.create_org(s, SYSTEM, name=PLATFORM_ORG, kind="platform")
        ids.create_user(
            s,
            SYSTEM,
            username=admin_username,
            password=admin_password,
            display_name="平台管理员",
            roles=["admin"],
            org_id=org.id,
        )
    return True


# (username, display name, roles, organisation name, organisation kind)
DEMO_USERS: list[tuple[str, str, list[str], str, str]] = [
    ("admin", "王建国（平台管理员）", ["admin"], PLATFORM_ORG, "platform"),
    ("steward", "李安全（数据安全官）", ["steward"], PLATFORM_ORG, "platform"),
    ("provider", "张民政（民政局数据员）", ["provider"], "县民政局", "department"),
    ("provider_agri", "赵农业（农业农村局数据员）", ["provider"], "县农业农村局", "department"),
    ("checker", "陈审核（结果审核员）", ["checker"], PLATFORM_ORG, "platform"),
    ("checker2", "周复核（结果审核员）", ["checker"], "县统计局", "department"),
    ("developer", "刘开发（康养科技开发者）", ["developer"], "青禾康养科技有限公司", "enterprise"),
    ("researcher", "孙研究（农科院研究员）", ["developer"], "省农业科学院", "research"),
    ("leader", "吴县长（领导）", ["leader"], "县人民政府办公室", "department"),
    ("operator", "郑运营（运营方）", ["operator"], PLATFORM_ORG, "platform"),
    ("expert", "钱专家（评审专家）", ["expert"], PLATFORM_ORG, "platform"),
]

DEMO_PROJECTS = [
    (
        "elderly-care-demand",
        "养老服务需求预测",
        "预测各乡镇未来三年居家养老服务需求，优化助餐点布局。",
        "developer",
    ),
    ("crop-yield", "农作物产量模型", "基于地块、作物与灌溉条件建立产量回归模型。", "researcher"),
]


DEMO_GRANTS = {
    "elderly-care-demand": ["residents", "households", "elderly_care_records", "towns", "villages"],
    "crop-yield": ["farmland_plots", "households", "villages", "towns"],
}


@dataclass
class DemoReport:
    logins: list[dict[str, str]] = field(default_factory=list)
    created: bool = False


def setup_demo(
    lab: Lab,
    *,
    size: str = "full",
    seed: int = 20261126,
    progress: Callable[[str], None] = lambda _m: None,
    steps: bool = True,
) -> DemoReport:
    """Idempotent: the first run builds the demo lab, later runs reuse it.

    ``steps=False`` stops after the users, projects, catalog and grants, before the demo steps of
    the operations platform and the showcase (scenarios, applications, agreements, stories that
    spend the demo projects' privacy budget, dashboards): tests of the gateway, jobs and airlock
    start from projects nobody has used yet."""
    lab.migrate()
    report = DemoReport(
        logins=[
            {"role": roles[0], "username": u, "password": DEMO_PASSWORD}
            for u, _n, roles, _o, _k in DEMO_USERS
        ]
    )
    _ensure_seed(lab, size=size, seed=seed, progress=progress)
    if lab.has_users():
        progress("reusing the existing demo lab / 复用已有演示实验室")
        return report
    progress("creating organisations, users and projects / 创建单位、用户与项目")
    with lab.tx() as s:
        orgs: dict[str, int] = {}
        users: dict[str, User] = {}
        for username, display, roles, org_name, kind in DEMO_USERS:
            if org_name not in orgs:
                existing = s.execute(select(Org).where(Org.name == org_name)).scalar_one_or_none()
                orgs[org_name] = (existing or ids.create_org(s, SYSTEM, name=org_name, kind=kind)).id
            users[username] = ids.create_user(
                s,
                SYSTEM,
                username=username,
                password=DEMO_PASSWORD,
                display_name=display,
                roles=roles,
                org_id=orgs[org_name],
            )
        project_ids = {}
        for slug, title, description, owner in DEMO_PROJECTS:
            owner_principal = ids.principal_for(s, users[owner], "system")
            project_ids[slug] = prj.create_project(
                s, owner_principal, slug=slug, title=title, description=description
            ).id
    from countylab.demolab import load_catalog, steward_principal

    steward = steward_principal(lab)
    load_catalog(lab, lab.settings.seed_dir, steward, progress)
    progress("granting datasets to the demo projects / 授权数据集")
    with lab.tx() as s:
        from countylab.catalog import service as catalog

        for slug, names in DEMO_GRANTS.items():
            for name in names:
                prj.grant_dataset(
                    s,
                    steward,
                    project_ids[slug],
                    catalog.get_by_name(s, name).id,
                    note="演示授权 / demo grant",
                )
    from countylab.demo_steps import DemoContext, demo_steps

    context = DemoContext(
        users={name: user.id for name, user in users.items()},
        orgs=orgs,
        project_ids=project_ids,
        steward=steward,
    )
    for step in demo_steps() if steps else []:
        step(lab, context, progress)
    report.created = True
    return report


def _ensure_seed(lab: Lab, *, size: str, seed: int, progress: Callable[[str], None]) -> None:
    seed_dir = lab.settings.seed_dir
    if (seed_dir / "manifest.json").exists():
        return
    from countylab.demo.generator import generate_county

    progress(f"generating the demo county ({size}) into {seed_dir} / 生成演示县数据")
    generate_county(seed_dir, seed=seed, size=size)
