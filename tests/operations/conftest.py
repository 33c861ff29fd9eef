"""A small county for the operations platform's tests (scenarios, applications, workflow,
agreements): departments, an enterprise, a research institute, users of every role (an expert
among them) and datasets of several grades, 重要 and 核心 included.

``world`` runs on SQLite and, in a second run, on PostgreSQL (``any_lab``); ``sqlite_world`` on
SQLite only.  Users log in with ``tests.support.PASSWORD``; ``world.principal(name)`` is the
principal a request of that user would carry.  Developers ``dev`` (enterprise) and ``researcher``
(research institute) hold a current accreditation; ``dev2`` (enterprise) holds an expired one;
``dev3`` (enterprise) none at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest

from countylab.catalog import service as catalog
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM, Principal
from countylab.lab import Lab
from countylab.operations import accreditation
from countylab.operations import scenarios as scenario_service
from countylab.operations.scenarios import Offer, ScenarioInput
from countylab.storage.models import Org, User, UserRole
from tests.support import create_user

CIVIL = "民政局"
AGRI = "农业农村局"
ECON = "经信局"
PLATFORM = "数据运营中心"
ENTERPRISE = "青禾数智科技有限公司"
INSTITUTE = "县农业科学研究所"

#: username -> (roles, organisation, organisation kind)
USERS: dict[str, tuple[list[str], str | None, str]] = {
    "admin": (["admin"], PLATFORM, "platform"),
    "operator": (["operator"], PLATFORM, "platform"),
    "steward": (["steward"], PLATFORM, "platform"),
    "leader": (["leader"], PLATFORM, "platform"),
    "checker": (["checker"], PLATFORM, "platform"),
    "expert": (["expert"], None, "platform"),
    "civil": (["provider"], CIVIL, "department"),
    "agri": (["provider"], AGRI, "department"),
    "econ": (["provider"], ECON, "department"),
    "dev": (["developer"], ENTERPRISE, "enterprise"),
    "dev2": (["developer"], ENTERPRISE, "enterprise"),
    "dev3": (["developer"], ENTERPRISE, "enterprise"),
    "researcher": (["developer"], INSTITUTE, "research"),
    "gov_dev": (["developer"], CIVIL, "department"),
}

DISPLAY = {
    "dev": "王开发",
    "dev2": "李二",
    "dev3": "赵三",
    "researcher": "陈研究",
    "civil": "周民政",
    "expert": "孙专家",
}

#: name -> (title, owning organisation, grade, columns)
DATASETS: dict[str, tuple[str, str, str, list[str]]] = {
    "elderly": ("老年人口信息", CIVIL, "important", ["town", "age", "lives_alone", "care_level"]),
    "assistance": ("低保救助对象", CIVIL, "core", ["town", "household_size", "benefit"]),
    "crops": ("农作物种植面积", AGRI, "general_3", ["town", "crop", "area_mu"]),
    "power": ("企业用电量", ECON, "general_2", ["credit_code", "month", "kwh"]),
}


@dataclass
class World:
    lab: Lab
    users: dict[str, int]
    orgs: dict[str, int]
    datasets: dict[str, int]
    today: date
    facts: dict[str, Any] = field(default_factory=dict)

    def principal(self, username: str) -> Principal:
        with self.lab.read() as s:
            user = s.get(User, self.users[username])
            assert user is not None
            return ids.principal_for(s, user, "session")

    def scenario(
        self,
        key: str = "default",
        *,
        by: str = "civil",
        datasets: tuple[str, ...] = ("elderly", "assistance"),
        columns: dict[str, tuple[str, ...]] | None = None,
        visibility: str = "public",
        field: str = "elderly_care",
        until_days: int = 60,
        title: str | None = None,
    ) -> int:
        """Publish a scenario (as ``by``) offering ``datasets``; returns its id."""
        cols = columns or {}
        org = DATASETS[datasets[0]][1]
        with self.lab.tx() as s:
            sc = scenario_service.publish(
                s,
                self.principal(by),
                ScenarioInput(
                    title=title or f"场景 {key}",
                    problem="独居老人需求分布不清，服务资源难以精准投放。",
                    org_id=self.orgs[org],
                    field=field,
                    offers=tuple(Offer(self.datasets[d], cols.get(d)) for d in datasets),
                    expected_outcome="按乡镇给出需求预测。",
                    apply_from=self.today - timedelta(days=1),
                    apply_until=self.today + timedelta(days=until_days),
                    visibility=visibility,
                ),
            )
            self.facts[f"scenario:{key}"] = sc.id
            return sc.id


def build_world(lab: Lab) -> World:
    users: dict[str, int] = {}
    first = next(iter(USERS))
    users[first] = create_user(lab, first, USERS[first][0], USERS[first][1], USERS[first][2])
    today = lab.clock().date()
    with lab.tx() as s:
        # one argon2 hash for everyone (same password): hashing 14 times costs seconds per test
        pw_hash = s.get(User, users[first]).password_hash  # type: ignore[union-attr]
        orgs = {o.name: o.id for o in s.query(Org).all()}
        for name, (roles, org, kind) in USERS.items():
            if name == first:
                continue
            if org is not None and org not in orgs:
                orgs[org] = ids.create_org(s, SYSTEM, name=org, kind=kind).id
            user = User(
                username=name,
                display_name=DISPLAY.get(name, name),
                password_hash=pw_hash,
                org_id=orgs[org] if org else None,
                is_active=True,
                lang="zh-CN",
                roles=[UserRole(role=r) for r in roles],
            )
            s.add(user)
            s.flush()
            users[name] = user.id
        datasets: dict[str, int] = {}
        for name, (title, org, grade, cols) in DATASETS.items():
            ds = catalog.create_dataset(
                s, SYSTEM, name=f"ops_{name}", title=title, org_id=orgs[org], privacy_unit="person"
            )
            ds.table_schema = {"columns": [{"name": c, "type": "string"} for c in cols]}
            catalog.set_grade(s, SYSTEM, ds.id, grade, reason="测试分级 / test grade")
            datasets[name] = ds.id
        for who, passed, expires in (
            ("dev", today - timedelta(days=100), today + timedelta(days=600)),
            ("researcher", today - timedelta(days=30), today + timedelta(days=700)),
            ("dev2", today - timedelta(days=800), today - timedelta(days=70)),
        ):
            accreditation.record(
                s,
                SYSTEM,
                user_id=users[who],
                course="数据安全与隐私保护培训",
                certificate_no=f"AQ-{who}",
                passed_on=passed,
                expires_on=expires,
            )
    return World(lab=lab, users=users, orgs=orgs, datasets=datasets, today=today)


@pytest.fixture
def world(any_lab: Lab) -> World:
    """The small county on SQLite and (second run) PostgreSQL."""
    return build_world(any_lab)


@pytest.fixture
def sqlite_world(lab: Lab) -> World:
    return build_world(lab)
