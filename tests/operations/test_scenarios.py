"""The scenario list: publish, propose → accept/decline, status moves, visibility, subscriptions,
the public view and the capability list (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from countylab.errors import Conflict, PermissionDenied, ValidationFailed
from countylab.operations import capabilities, public, subscriptions
from countylab.operations import scenarios as sv
from countylab.operations.scenarios import Offer, ScenarioInput
from countylab.operations.states import SCENARIO_TRANSITIONS, ScenarioStatus
from countylab.storage.models import AuditEvent
from countylab.storage.notify_models import Notification, NotificationRecipient
from tests.operations.conftest import World


def _input(w: World, **over: object) -> ScenarioInput:
    base: dict[str, object] = {
        "title": "居家养老服务需求预测",
        "problem": "独居老人分布不清。",
        "org_id": w.orgs["民政局"],
        "field": "elderly_care",
        "offers": (Offer(w.datasets["elderly"], ("town", "age")),),
    }
    base.update(over)
    return ScenarioInput(**base)  # type: ignore[arg-type]


def test_publish_own_department_and_refusals(world: World) -> None:
    with world.lab.tx() as s:
        sc = sv.publish(s, world.principal("civil"), _input(world))
        assert sc.status == "collecting"
        assert [d["columns"] for d in sv.view(s, sc)["datasets"]] == [["town", "age"]]  # type: ignore[index]
    # a provider of another department may not publish for 民政局
    with pytest.raises(PermissionDenied), world.lab.tx() as s:
        sv.publish(s, world.principal("agri"), _input(world))
    # a leader may
    with world.lab.tx() as s:
        sv.publish(s, world.principal("leader"), _input(world, title="另一个"))
    bad = [
        ({"field": "space"}, "field"),
        ({"visibility": "secret"}, "visibility"),
        ({"offers": (Offer(world.datasets["elderly"], ("nope",)),)}, "columns"),
        ({"offers": ()}, "datasets"),
        ({"title": " "}, "title"),
    ]
    for over, fld in bad:
        with pytest.raises(ValidationFailed) as err, world.lab.tx() as s:
            sv.publish(s, world.principal("civil"), _input(world, **over))
        assert err.value.details["field"] == fld
    with pytest.raises(ValidationFailed) as err, world.lab.tx() as s:
        sv.publish(
            s, world.principal("civil"), _input(world, offers=(Offer(world.datasets["elderly"], ("nope",)),))
        )
    assert "nope" in err.value.message_zh and "nope" in err.value.message_en
    with world.lab.read() as s:
        titles = [a.action for a in s.execute(select(AuditEvent)).scalars()]
    assert titles.count("scenario.publish") == 2


def test_proposal_accept_decline_and_transitions(world: World) -> None:
    with world.lab.tx() as s:
        sc = sv.propose(s, world.principal("dev"), _input(world, org_id=None))
        assert sc.status == "proposed" and sc.org_id == world.orgs["民政局"]
        sid = sc.id
    # the public and other developers do not see a proposal
    with world.lab.read() as s:
        assert public.public_scenarios(s) == []
        assert [x.id for x in sv.list_scenarios(s, world.principal("researcher"))] == []
        assert [x.id for x in sv.list_scenarios(s, world.principal("dev"))] == [sid]
    with pytest.raises(PermissionDenied), world.lab.tx() as s:
        sv.accept(s, world.principal("civil"), sid)
    with pytest.raises(ValidationFailed), world.lab.tx() as s:
        sv.decline(s, world.principal("operator"), sid, " ")
    with world.lab.tx() as s:
        sv.accept(s, world.principal("operator"), sid, "符合条件")
    with world.lab.read() as s:
        assert [p.id for p in public.public_scenarios(s)] == [sid]
    with world.lab.tx() as s:
        sv.change_status(s, world.principal("civil"), sid, "matched", "已与企业对接")
        sv.change_status(s, world.principal("leader"), sid, "in_progress", "开始实施")
    with pytest.raises(Conflict), world.lab.tx() as s:
        sv.change_status(s, world.principal("civil"), sid, "collecting", "回到征集")
    with pytest.raises(ValidationFailed), world.lab.tx() as s:
        sv.change_status(s, world.principal("civil"), sid, "completed", "")
    with pytest.raises(PermissionDenied), world.lab.tx() as s:
        sv.change_status(s, world.principal("agri"), sid, "completed", "别人的场景")
    with world.lab.tx() as s:
        done = sv.change_status(s, world.principal("civil"), sid, "completed", "已完成验收")
        assert done.status == "completed" and done.status_reason == "已完成验收"
    with world.lab.read() as s:
        actions = [a.action for a in s.execute(select(AuditEvent)).scalars()]
    assert actions.count("scenario.status") == 3 and "scenario.accept" in actions


def test_internal_scenarios_stay_in_the_domain(world: World) -> None:
    sid = world.scenario("inner", visibility="internal")
    with world.lab.read() as s:
        assert public.public_scenarios(s) == []
        assert public.public_scenario(s, sid) is None
        assert [x.id for x in sv.list_scenarios(s, world.principal("dev"))] == []
        assert [x.id for x in sv.list_scenarios(s, world.principal("gov_dev"))] == [sid]
        assert [x.id for x in sv.list_scenarios(s, world.principal("agri"))] == [sid]


def test_subscribers_hear_of_open_scenarios(world: World) -> None:
    with world.lab.tx() as s:
        subscriptions.subscribe(s, world.principal("dev"), ["elderly_care"])
        subscriptions.subscribe(s, world.principal("researcher"), ["agriculture"])
        subscriptions.subscribe(s, world.principal("gov_dev"), [""])
    with pytest.raises(ValidationFailed), world.lab.tx() as s:
        subscriptions.subscribe(s, world.principal("dev"), ["nope"])
    world.scenario("open")
    world.scenario("inner", visibility="internal")

    def told(user: str) -> list[str]:
        with world.lab.read() as s:
            q = (
                select(Notification.target)
                .join(NotificationRecipient, NotificationRecipient.notification_id == Notification.id)
                .where(
                    NotificationRecipient.user_id == world.users[user], Notification.kind == "scenario.open"
                )
            )
            return sorted(s.execute(q).scalars())

    assert told("dev") == [f"scenario:{world.facts['scenario:open']}"]  # the internal one not
    assert told("researcher") == []
    assert len(told("gov_dev")) == 2


def test_public_view_carries_no_personal_data(world: World) -> None:
    sid = world.scenario("pub")
    with world.lab.read() as s:
        found = public.public_scenarios(s, limit=5)
    assert [p.id for p in found] == [sid]
    p = found[0]
    assert p.department == "民政局" and p.field_name == "养老服务" and p.status_name == "征集中"
    assert p.datasets == ["老年人口信息", "低保救助对象"]
    text = repr(p)
    for name in ("civil", "dev", "admin"):
        assert f"'{name}'" not in text


def test_capabilities_and_pairing(world: World) -> None:
    world.scenario("a", field="elderly_care")
    with world.lab.tx() as s:
        cap = capabilities.publish(
            s, world.principal("dev"), title="养老需求预测模型", description="时序预测", field="elderly_care"
        )
        assert cap.org_id == world.orgs["青禾数智科技有限公司"]
    with pytest.raises(ValidationFailed), world.lab.tx() as s:  # a department offers no capability
        capabilities.publish(s, world.principal("operator"), title="x", description="", field="health")
    with world.lab.read() as s:
        pairs = capabilities.pairings(s, world.principal("operator"))
    assert pairs[0].field == "elderly_care" and pairs[0].scenarios and pairs[0].capabilities


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=st.lists(st.sampled_from([s.value for s in ScenarioStatus]), min_size=1, max_size=6))
def test_status_moves_follow_the_one_table(sqlite_world: World, moves: list[str]) -> None:
    """Whatever is asked, a scenario only ever takes a step of SCENARIO_TRANSITIONS; a refused
    step changes nothing."""
    sid = sqlite_world.scenario("prop")
    for target in moves:
        with sqlite_world.lab.read() as s:
            before = sv.get(s, sqlite_world.principal("civil"), sid).status
        try:
            with sqlite_world.lab.tx() as s:
                sv.change_status(s, sqlite_world.principal("civil"), sid, target, "理由")
        except (Conflict, PermissionDenied, ValidationFailed):
            pass
        with sqlite_world.lab.read() as s:
            after = sv.get(s, sqlite_world.principal("civil"), sid).status
        assert after == before or ScenarioStatus(after) in SCENARIO_TRANSITIONS[ScenarioStatus(before)]
        assert after in (before, target)


def test_todos_for_proposals_and_returned_applications(sqlite_world: World) -> None:
    from datetime import timedelta

    from countylab.notify.todos import todos
    from countylab.operations import applications as apps
    from countylab.operations.applications import COMMITMENTS, ApplicationInput, RequestedDataset
    from countylab.operations.states import ApplicationStatus, move
    from countylab.storage.operations_models import Application

    w = sqlite_world
    with w.lab.tx() as s:
        own = sv.propose(s, w.principal("dev"), _input(w, org_id=None))
    with w.lab.read() as s:
        kinds = [t.kind for t in todos(s, w.principal("operator"))]
    assert kinds == ["todo.scenario_proposed"]
    with w.lab.tx() as s:
        sv.accept(s, w.principal("operator"), own.id, "好")
        app = apps.create(
            s,
            w.principal("dev"),
            ApplicationInput(
                own.id,
                "预测",
                "public_good",
                (RequestedDataset(w.datasets["elderly"]),),
                ("dp_query",),
                (),
                w.today,
                w.today + timedelta(days=30),
                "表",
                tuple(COMMITMENTS),
            ),  # fmt: skip
            today=w.today,
        )
        apps.submit(s, w.principal("dev"), app.id, today=w.today)
        move(s, s.get(Application, app.id), ApplicationStatus.returned, reason="补充附件")  # type: ignore[arg-type]
    with w.lab.read() as s:
        assert [t.kind for t in todos(s, w.principal("operator"))] == []
        mine = [t for t in todos(s, w.principal("dev")) if t.kind == "todo.application_returned"]
    assert len(mine) == 1 and "补充附件" in mine[0].text("zh-CN")


def test_notifications_read_in_both_languages(sqlite_world: World) -> None:
    from countylab.notify import inbox

    w = sqlite_world
    with w.lab.tx() as s:
        subscriptions.subscribe(s, w.principal("dev"), ["elderly_care"])
    w.scenario("words", title="居家养老服务需求预测")
    with w.lab.read() as s:
        found = inbox.items(s, w.users["dev"], unread_only=True, limit=5, offset=0)
    zh, en = found[0].text("zh-CN"), found[0].text("en")
    assert "居家养老服务需求预测" in zh and "养老服务" in zh and "开始征集" in zh
    assert "Elderly care" in en and "collecting" in en
