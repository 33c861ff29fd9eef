"""Meta-test examples for the approval workflow, public notices, objections, the operator's view
and the workflow configuration (engineer B's routes).

setup() adds an operator, a leader, an expert, an enterprise developer ``wfdev`` (accredited) and
a scenario offering the World's d1; fill() makes a fresh application in the state each route needs
(submitted, with an open expert step, on public notice, with an objection, with its notice over)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.operations import accreditation, applications, publicity, workflow, workflow_view
from countylab.operations import scenarios as sv
from countylab.operations.applications import COMMITMENTS, ApplicationInput, RequestedDataset
from countylab.operations.scenarios import Offer, ScenarioInput
from countylab.operations.workflow_config import default_source
from countylab.storage.workflow_models import ApprovalStep, PublicNotice
from tests.meta.example import Example
from tests.support import PASSWORD

EXAMPLES: dict[tuple[str, str], Example] = {
    ("POST", "/api/applications/{app_id}/decisions"): Example(
        "operator", {"step": "precheck", "decision": "pass"}
    ),
    ("POST", "/api/applications/{app_id}/experts"): Example("operator", {"user_ids": [0]}),
    ("POST", "/api/notices/{notice_id}/objections"): Example("dev", {"reason": "担心数据被用于营销"}),
    ("POST", "/api/objections/{objection_id}/answer"): Example(
        "operator", {"outcome": "continue", "answer": "已核实，用途符合场景"}
    ),
    ("POST", "/api/notices/{notice_id}/conclude"): Example("operator"),
    ("PUT", "/api/workflow/config"): Example("admin", {"source": "", "note": "元测试"}),
    # pages
    ("POST", "/applications/{app_id}/workflow/decide"): Example(
        "operator", {"step": "precheck", "decision": "pass", "reason": ""}
    ),
    ("POST", "/applications/{app_id}/workflow/experts"): Example("operator", {"expert": "0"}),
    ("POST", "/notices/{notice_id}/objections"): Example("dev", {"reason": "担心数据被用于营销"}),
    ("POST", "/objections/{objection_id}/answer"): Example(
        "operator", {"outcome": "continue", "answer": "已核实，用途符合场景"}
    ),
    ("POST", "/notices/{notice_id}/conclude"): Example("operator", {}),
    ("POST", "/ops/workflow"): Example("admin", {"source": "", "note": "元测试"}),
}


def setup(world: Any) -> None:
    today = world.lab.clock().date()
    with world.lab.tx() as s:
        ent = ids.create_org(s, SYSTEM, name="审批元测试企业", kind="enterprise")
        platform = ids.create_org(s, SYSTEM, name="数据运营中心", kind="platform")
        for name, roles, org in (
            ("operator", ["operator"], platform.id),
            ("leader", ["leader"], platform.id),
            ("expert", ["expert"], None),
            ("wfdev", ["developer"], ent.id),
        ):
            world.users[name] = ids.create_user(
                s, SYSTEM, username=name, password=PASSWORD, display_name=name, roles=roles, org_id=org
            ).id
        accreditation.record(
            s,
            SYSTEM,
            user_id=world.users["wfdev"],
            course="培训",
            certificate_no="wf-1",
            passed_on=today - timedelta(days=1),
            expires_on=today + timedelta(days=400),
        )
        dept = ids.get_user(s, world.users["provider"]).org_id
        sc = sv.publish(
            s,
            SYSTEM,
            ScenarioInput(
                "审批元测试场景",
                "问题",
                dept,
                "elderly_care",
                (Offer(world.dataset_id),),
                apply_until=today + timedelta(days=90),
            ),
        )
    world.values["_wf_scenario"] = str(sc.id)
    # for the GET walk (tests/meta/test_reads_do_not_write.py): a notice running, an application
    # (the application_id of the walk is the applicant area's draft, with its attachment)
    world.values["notice_id"] = str(_publicising(world))
    for key in (("PUT", "/api/workflow/config"), ("POST", "/ops/workflow")):
        EXAMPLES[key].body = {"source": default_source(), "note": "元测试"}
    EXAMPLES[("POST", "/api/applications/{app_id}/experts")].body = {"user_ids": [world.users["expert"]]}
    EXAMPLES[("POST", "/applications/{app_id}/workflow/experts")].body = {
        "expert": str(world.users["expert"])
    }


def _submitted(world: Any) -> int:
    today = world.lab.clock().date()
    with world.lab.tx() as s:
        dev = ids.principal_for(s, ids.get_user(s, world.users["wfdev"]), "session")
        app = applications.create(
            s,
            dev,
            ApplicationInput(
                scenario_id=int(world.values["_wf_scenario"]),
                title="审批元测试申请",
                purpose="public_good",
                datasets=(RequestedDataset(world.dataset_id),),
                channels=("dp_query",),
                starts_on=today + timedelta(days=3),
                ends_on=today + timedelta(days=200),
                expected_outputs="汇总表",
                commitments=tuple(COMMITMENTS),
            ),
            today=today,
        )
        applications.submit(s, dev, app.id, today=today)
        return app.id


def _publicising(world: Any) -> int:
    """A fresh application on public notice; returns the notice's id."""
    app_id = _submitted(world)
    now = world.lab.clock()
    with world.lab.tx() as s:
        workflow_view.decide(s, SYSTEM, app_id, "precheck", "pass", "", now=now)
    for _ in range(6):
        with world.lab.tx() as s:
            open_ = [st for st in workflow.steps_of(s, app_id) if st.status == "open"]
            if not open_:
                break
            for st in open_:
                workflow.decide(s, SYSTEM, st.id, "approve", "", now=now)
    with world.lab.read() as s:
        notice = publicity.notice_of(s, app_id)
        assert notice is not None and notice.status == "open"
        return notice.id


def fill(world: Any, path: str, actor: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if "{app_id}" in path:
        app_id = _submitted(world)
        if path.endswith("/experts"):
            with world.lab.tx() as s:
                workflow_view.decide(s, SYSTEM, app_id, "precheck", "pass", "", now=world.lab.clock())
                s.add(
                    ApprovalStep(
                        application_id=app_id,
                        round=9,
                        kind="expert",
                        scope="",
                        stage=1,
                        status="open",
                        config_version=0,
                        opened_at=world.lab.clock(),
                        reason="",
                        details={"experts_needed": 1, "experts_assign": 1},
                        version=1,
                    )
                )
        out["app_id"] = str(app_id)
    if "{notice_id}" in path or "{objection_id}" in path:
        notice_id = _publicising(world)
        out["notice_id"] = str(notice_id)
        if path.endswith("/conclude"):
            with world.lab.tx() as s:
                row = s.get(PublicNotice, notice_id)
                assert row is not None
                row.ends_at = world.lab.clock() - timedelta(minutes=1)
        if "{objection_id}" in path:
            with world.lab.tx() as s:
                p = ids.principal_for(s, ids.get_user(s, world.users["dev"]), "session")
                obj = publicity.file_objection(s, p, notice_id, "元测试异议理由", now=world.lab.clock())
                out["objection_id"] = str(obj.id)
    return out
