"""The approval workflow's paths and refusals, on SQLite and PostgreSQL (``world``)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from countylab.errors import Conflict, PermissionDenied, ValidationFailed
from countylab.notify.messages import aware
from countylab.operations import workflow
from countylab.operations.publicity import conclude, notice_of, public_notices
from countylab.operations.terms import Channel
from countylab.operations.workflow import SecurityTerms
from countylab.storage.models import AuditEvent
from tests.operations.conftest import AGRI, CIVIL, ECON, World
from tests.operations.workflow_helpers import decide, kinds_open, now, precheck, status, step_rows, submitted


def _finish_notice(world: World, app_id: int) -> None:
    with world.lab.read() as s:
        notice = notice_of(s, app_id)
        assert notice is not None
        ends = aware(notice.ends_at)
    world.lab.clock = lambda: ends + timedelta(minutes=1)
    with world.lab.tx() as s:
        conclude(s, world.principal("operator"), notice.id, now=now(world))


def test_general_public_good_path_parallel_consent_and_security_then_notice_then_approved(
    world: World,
) -> None:
    """general_3 + public_good: consent, then security (config: two stages), notice, approved."""
    app_id = submitted(world, datasets=("crops",))
    assert status(world, app_id) == "submitted"
    precheck(world, app_id)
    assert status(world, app_id) == "in_review"
    assert kinds_open(world, app_id) == ["consent"]
    decide(world, app_id, "consent", "agri")
    assert kinds_open(world, app_id) == ["security"]
    terms = SecurityTerms(
        channels=("dp_query",),
        columns={world.datasets["crops"]: ["town", "area_mu"]},
        budgets={world.datasets["crops"]: (1.5, 1e-8)},
        conditions="仅按乡镇汇总",
    )
    decide(world, app_id, "security", "steward", terms=terms)
    assert status(world, app_id) == "publicising"
    with world.lab.read() as s:
        shown = public_notices(s, now=now(world))
    assert [n.application_number for n in shown] and shown[0].datasets == ["农作物种植面积"]
    assert shown[0].channels == ["dp_query"] and shown[0].organisation == "青禾数智科技有限公司"
    with world.lab.read() as s, pytest.raises(Conflict):
        workflow.approved_terms(s, app_id)
    _finish_notice(world, app_id)
    assert status(world, app_id) == "approved"
    with world.lab.read() as s:
        t = workflow.approved_terms(s, app_id)
    assert t.channels == frozenset({Channel.dp_query})
    assert t.datasets[0].columns == ("town", "area_mu") and t.datasets[0].epsilon == 1.5
    assert t.quota is None and t.conditions == "仅按乡镇汇总"
    assert t.member_ids[0] == world.users["dev"]


def test_industry_path_needs_final_and_two_departments_consent_in_parallel(world: World) -> None:
    app_id = submitted(world, datasets=("crops", "power"), purpose="industry", scenario_by="agri")
    precheck(world, app_id)
    # general + industry: consent and security in parallel (one stage), then the leader's 终审
    assert kinds_open(world, app_id) == ["consent", "consent", "security"]
    decide(world, app_id, "consent", "agri", org=AGRI)
    with pytest.raises(PermissionDenied):  # 经信局's step cannot be decided by 农业农村局
        decide(world, app_id, "consent", "agri", org=ECON)
    with pytest.raises(PermissionDenied):  # nor by a provider of an uninvolved department
        decide(world, app_id, "consent", "civil", org=ECON)
    decide(world, app_id, "consent", "econ", org=ECON)
    decide(
        world, app_id, "security", "steward", terms=SecurityTerms(quota={"max_cpu": 4, "concurrent_jobs": 1})
    )
    assert kinds_open(world, app_id) == ["final"]
    decide(world, app_id, "final", "leader", reason="同意")
    assert status(world, app_id) == "publicising"
    _finish_notice(world, app_id)
    with world.lab.read() as s:
        t = workflow.approved_terms(s, app_id)
    assert t.quota is not None and t.quota.max_cpu == 4 and t.quota.concurrent_jobs == 1


def test_important_requires_expert_review_by_assigned_experts(world: World) -> None:
    app_id = submitted(world, datasets=("elderly",), scenario_by="civil", channels=("dp_query",))
    precheck(world, app_id)
    decide(world, app_id, "consent", "civil")
    decide(world, app_id, "security", "steward")
    assert kinds_open(world, app_id) == ["expert"]
    step = [s for s in step_rows(world, app_id) if s["kind"] == "expert"]
    assert step
    with world.lab.read() as s:
        sid = next(st.id for st in workflow.steps_of(s, app_id) if st.kind == "expert")
    with world.lab.tx() as s, pytest.raises(PermissionDenied):  # not assigned yet
        workflow.expert_vote(s, world.principal("expert"), sid, "agree", "", now=now(world))
    with world.lab.tx() as s:
        workflow.assign_experts(s, world.principal("operator"), sid, [world.users["expert"]], now=now(world))
    with world.lab.tx() as s:
        step_row = workflow.get_step(s, sid)
        step_row.details = {**step_row.details, "experts_needed": 1}  # this county asks one expert here
    with world.lab.tx() as s:
        workflow.expert_vote(s, world.principal("expert"), sid, "agree", "方法得当", now=now(world))
    with world.lab.tx() as s, pytest.raises(Conflict):
        workflow.expert_vote(s, world.principal("expert"), sid, "agree", "again", now=now(world))
    assert kinds_open(world, app_id) == ["final"]  # important → 终审 in the default config


def test_dp_channel_refused_where_grade_allows_no_dp_and_budget_capped(world: World) -> None:
    app_id = submitted(world, datasets=("crops",))
    precheck(world, app_id)
    decide(world, app_id, "consent", "agri")
    with pytest.raises(ValidationFailed) as over:
        decide(
            world,
            app_id,
            "security",
            "steward",
            terms=SecurityTerms(budgets={world.datasets["crops"]: (50.0, None)}),
        )
    assert "ε" in over.value.message_zh
    with pytest.raises(ValidationFailed):  # a channel nobody asked for cannot be added
        decide(world, app_id, "security", "steward", terms=SecurityTerms(channels=("model_serving",)))
    with pytest.raises(ValidationFailed):  # columns are only narrowed
        decide(
            world,
            app_id,
            "security",
            "steward",
            terms=SecurityTerms(columns={world.datasets["crops"]: ["salary"]}),
        )
    assert kinds_open(world, app_id) == ["security"]  # none of the refusals left a trace


def test_applicant_org_cannot_decide_and_core_never_to_external(world: World) -> None:
    # gov_dev (民政局) applies for 民政局's own core data: in-domain, allowed, but 民政局 cannot consent to it
    from countylab.identity.access import SYSTEM
    from countylab.operations import accreditation

    with world.lab.tx() as s:
        accreditation.record(
            s,
            SYSTEM,
            user_id=world.users["gov_dev"],
            course="数据安全培训",
            certificate_no="AQ-g",
            passed_on=world.today - timedelta(days=10),
            expires_on=world.today + timedelta(days=300),
        )
    app_id = submitted(
        world, datasets=("assistance",), by="gov_dev", scenario_by="civil", channels=("sandbox_job",)
    )
    precheck(world, app_id)
    with pytest.raises(PermissionDenied) as own:
        decide(world, app_id, "consent", "civil")
    assert own.value.details["reason"] == "applicant_org"
    # core data for an external organisation is refused at every step, even if it got submitted
    ext = submitted(world, datasets=("crops",), key="ext")
    with world.lab.tx() as s:  # simulate a dataset re-graded to core after submission
        from countylab.storage.models import Dataset

        ds = s.get(Dataset, world.datasets["crops"])
        assert ds is not None
        ds.grade = "core"
    with pytest.raises(PermissionDenied) as core:
        precheck(world, ext)
    assert core.value.details["reason"] == "core_external"
    precheck(world, ext, "reject", "核心数据不对外")
    assert status(world, ext) == "rejected"


def test_return_then_resubmit_starts_a_new_round_keeping_history(world: World) -> None:
    from countylab.operations import applications

    app_id = submitted(world)
    with pytest.raises(ValidationFailed):
        precheck(world, app_id, "return", "")  # a return needs a reason
    precheck(world, app_id, "return", "请补充数据使用说明")
    assert status(world, app_id) == "returned"
    with world.lab.tx() as s:
        applications.submit(s, world.principal("dev"), app_id, today=world.today)
    precheck(world, app_id)
    decide(world, app_id, "consent", "agri")
    decide(world, app_id, "security", "steward", "return", "请缩小字段范围")
    assert status(world, app_id) == "returned"
    rows = step_rows(world, app_id)
    assert [(r["round"], r["kind"], r["status"]) for r in rows] == [
        (1, "precheck", "returned"),
        (2, "precheck", "approved"),
        (2, "consent", "approved"),
        (2, "security", "returned"),
    ]
    with world.lab.read() as s:
        actions = [e.action for e in s.query(AuditEvent).filter(AuditEvent.target == f"application:{app_id}")]
    assert actions.count("application.precheck") == 2 and "application.security" in actions


def test_refusal_by_a_department_rejects_and_needs_a_reason(world: World) -> None:
    app_id = submitted(world)
    precheck(world, app_id)
    with pytest.raises(ValidationFailed):
        decide(world, app_id, "consent", "agri", "refuse", "")
    decide(world, app_id, "consent", "agri", "refuse", "该数据正在核查")
    assert status(world, app_id) == "rejected"
    with pytest.raises(AssertionError):  # no open step is left
        decide(world, app_id, "security", "steward")


def test_wrong_roles_are_refused(world: World) -> None:
    app_id = submitted(world)
    with pytest.raises(PermissionDenied):
        precheck(world, app_id, by="steward")
    precheck(world, app_id)
    with pytest.raises(Conflict):  # already pre-checked
        precheck(world, app_id)
    with pytest.raises(PermissionDenied):
        decide(world, app_id, "consent", "steward")


def test_deadlines_from_config_and_overdue_reminder_once(world: World) -> None:
    from countylab.operations.publicity import sweep
    from countylab.storage.notify_models import Notification

    app_id = submitted(world)
    precheck(world, app_id)
    with world.lab.read() as s:
        step = next(st for st in workflow.steps_of(s, app_id) if st.status == "open")
        due = aware(step.due_at)
    assert due is not None and due - now(world) >= timedelta(days=5)  # 5 working days at least 5 days
    with world.lab.tx() as s:
        assert sweep(s, now=now(world))["reminded"] == 0
    world.lab.clock = lambda: due + timedelta(hours=1)
    with world.lab.read() as s:
        from countylab.operations.overview import overdue_steps

        late = overdue_steps(s, now=now(world))
    assert [r.application_id for r in late] == [app_id]
    with world.lab.tx() as s:
        assert sweep(s, now=now(world))["reminded"] == 1
    with world.lab.tx() as s:
        assert sweep(s, now=now(world))["reminded"] == 0  # once
        assert s.query(Notification).filter(Notification.kind == "workflow.overdue").count() == 1


def test_steps_only_for_civil_consent_when_only_civil_owns(world: World) -> None:
    app_id = submitted(world, datasets=("elderly",), scenario_by="civil", channels=("dp_query",))
    precheck(world, app_id)
    with world.lab.read() as s:
        consents = [st.org_id for st in workflow.steps_of(s, app_id) if st.kind == "consent"]
    assert consents == [world.orgs[CIVIL]]
