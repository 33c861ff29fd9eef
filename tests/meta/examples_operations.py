"""Meta-test examples for the scenario list, capabilities, applications (applicant side) and
accreditation (engineer A's routes).

setup() adds an enterprise developer (``entdev``), a collecting scenario of the World's
department offering d1 and d2, and a current accreditation for ``dev``; fill() makes a fresh
object in the state each route needs (a draft, a complete draft, an authorised application, a
proposed or collecting scenario) for every call."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pypdfium2

from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.operations import accreditation, applications, attachments
from countylab.operations import scenarios as sv
from countylab.operations.applications import COMMITMENTS, ApplicationInput, RequestedDataset
from countylab.operations.scenarios import Offer, ScenarioInput
from countylab.storage.models import User
from countylab.storage.operations_models import Application
from tests.meta.example import Example
from tests.support import PASSWORD


def _pdf() -> bytes:
    doc = pypdfium2.PdfDocument.new()
    doc.new_page(595, 842)
    buf = io.BytesIO()
    doc.save(buf)
    doc.close()
    return buf.getvalue()


PDF = ("方案.pdf", _pdf())

_SCENARIO = {"title": "养老需求", "problem": "需求不清", "field": "elderly_care"}
_APPLICATION = {"title": "养老预测", "purpose": "public_good", "channels": ["dp_query"]}

EXAMPLES: dict[tuple[str, str], Example] = {
    ("POST", "/api/scenarios"): Example("provider", dict(_SCENARIO)),
    ("POST", "/api/scenarios/propose"): Example("dev", dict(_SCENARIO)),
    ("POST", "/api/scenarios/{scenario_id}/accept"): Example("admin", {"reason": "同意"}),
    ("POST", "/api/scenarios/{scenario_id}/decline"): Example("admin", {"reason": "重复"}),
    ("POST", "/api/scenarios/{scenario_id}/status"): Example(
        "provider", {"status": "matched", "reason": "已对接"}
    ),
    ("PUT", "/api/scenarios/{scenario_id}"): Example("provider", {**_SCENARIO, "reason": "修订"}),
    ("PUT", "/api/me/scenario-subscriptions"): Example("dev", {"fields": ["elderly_care"]}),
    ("POST", "/api/capabilities"): Example("entdev", {"title": "预测模型", "field": "elderly_care"}),
    ("POST", "/api/applications"): Example("dev", dict(_APPLICATION)),
    ("PUT", "/api/applications/{application_id}"): Example("dev", dict(_APPLICATION)),
    ("POST", "/api/applications/{application_id}/submit"): Example("dev"),
    ("POST", "/api/applications/{application_id}/withdraw"): Example("dev", {"reason": "不再需要"}),
    ("POST", "/api/applications/{application_id}/renew"): Example("dev"),
    ("POST", "/api/applications/{application_id}/attachments"): Example("dev", files=PDF),  # type: ignore[arg-type]
    ("POST", "/api/accreditations"): Example("admin", {"course": "数据安全培训"}),
    # pages
    ("POST", "/scenarios"): Example("provider", dict(_SCENARIO)),
    ("POST", "/scenarios/{scenario_id}/status"): Example(
        "provider", {"status": "matched", "reason": "已对接"}
    ),
    ("POST", "/scenarios/{scenario_id}/edit"): Example("provider", {**_SCENARIO, "reason": "修订"}),
    ("POST", "/scenarios/subscriptions"): Example("dev", {"field": "agriculture"}),
    ("POST", "/capabilities"): Example("entdev", {"title": "估产模型", "field": "agriculture"}),
    ("POST", "/applications"): Example("dev", {"title": "表单申请", "action": "save"}),
    ("POST", "/applications/{application_id}"): Example("dev", {"title": "改名", "action": "save"}),
    ("POST", "/applications/{application_id}/submit"): Example("dev", {}),
    ("POST", "/applications/{application_id}/withdraw"): Example("dev", {"reason": "撤回"}),
    ("POST", "/applications/{application_id}/renew"): Example("dev", {}),
    ("POST", "/applications/{application_id}/attachments"): Example("dev", files=PDF),  # type: ignore[arg-type]
    ("POST", "/ops/accreditations"): Example("admin", {"course": "数据安全培训"}),
}


def _input(world: Any) -> ApplicationInput:
    today = world.lab.clock().date()
    return ApplicationInput(
        scenario_id=int(world.values["_scenario"]),
        title="元测试申请",
        purpose="public_good",
        datasets=(RequestedDataset(world.dataset_id),),
        channels=("dp_query",),
        starts_on=today + timedelta(days=3),
        ends_on=today + timedelta(days=200),
        expected_outputs="汇总表",
        commitments=tuple(COMMITMENTS),
    )


def setup(world: Any) -> None:
    today = world.lab.clock().date()
    with world.lab.tx() as s:
        org = ids.create_org(s, SYSTEM, name="青禾数智", kind="enterprise")
        world.users["entdev"] = ids.create_user(
            s,
            SYSTEM,
            username="entdev",
            password=PASSWORD,
            display_name="entdev",
            roles=["developer"],
            org_id=org.id,
        ).id
        dept = s.get(User, world.users["provider"]).org_id  # type: ignore[union-attr]
        sc = sv.publish(
            s,
            SYSTEM,
            ScenarioInput(
                "元测试场景",
                "问题",
                dept,
                "elderly_care",
                (Offer(world.dataset_id), Offer(world.dataset2_id)),
                apply_until=today + timedelta(days=90),
            ),
        )
        accreditation.record(
            s,
            SYSTEM,
            user_id=world.users["dev"],
            course="培训",
            certificate_no="1",
            passed_on=today - timedelta(days=1),
            expires_on=today + timedelta(days=400),
        )
    world.values["_scenario"] = str(sc.id)
    # ids for the GET pages of tests/meta/test_reads_do_not_write.py: a draft with a PDF attachment
    with world.lab.tx() as s:
        dev = ids.principal_for(s, ids.get_user(s, world.users["dev"]), "session")
        draft = applications.create(s, dev, _input(world), today=today)
        att = attachments.attach(
            s, dev, draft.id, filename=PDF[0], content=PDF[1], data_dir=world.lab.settings.data_dir
        )
    world.values.setdefault("scenario_id", str(sc.id))
    world.values.setdefault("application_id", str(draft.id))
    world.values.setdefault("attachment_id", str(att.id))
    offer = [{"dataset_id": world.dataset_id}]
    for key in (("POST", "/api/scenarios"), ("POST", "/api/scenarios/propose")):
        EXAMPLES[key].body = {**_SCENARIO, "org_id": dept, "datasets": offer}
    EXAMPLES[("POST", "/scenarios")].body = {
        **_SCENARIO,
        "org_id": str(dept),
        "dataset": str(world.dataset_id),
    }
    EXAMPLES[("PUT", "/api/scenarios/{scenario_id}")].body = {
        **_SCENARIO,
        "reason": "修订",
        "datasets": offer,
    }
    EXAMPLES[("POST", "/scenarios/{scenario_id}/edit")].body = {
        **_SCENARIO,
        "reason": "修订",
        "dataset": str(world.dataset_id),
    }
    for key in (("POST", "/api/applications"), ("PUT", "/api/applications/{application_id}")):
        EXAMPLES[key].body = {**_APPLICATION, "scenario_id": sc.id, "datasets": offer}
    for key in (("POST", "/applications"), ("POST", "/applications/{application_id}")):
        EXAMPLES[key].body = {**(EXAMPLES[key].body or {}), "scenario_id": str(sc.id)}
    acc = {
        "user_id": world.users["entdev"],
        "passed_on": str(today),
        "expires_on": str(today + timedelta(days=365)),
    }
    EXAMPLES[("POST", "/api/accreditations")].body = {"course": "数据安全培训", **acc}
    EXAMPLES[("POST", "/ops/accreditations")].body = {
        "course": "数据安全培训",
        **{k: str(v) for k, v in acc.items()},
    }


def fill(world: Any, path: str, actor: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if "{scenario_id}" in path:
        with world.lab.tx() as s:
            dept = s.get(User, world.users["provider"]).org_id  # type: ignore[union-attr]
            data = ScenarioInput("新场景", "问题", dept, "elderly_care", (Offer(world.dataset_id),))
            dev = ids.principal_for(s, ids.get_user(s, world.users["dev"]), "session")
            sc = (
                sv.propose(s, dev, data)
                if path.endswith(("/accept", "/decline"))
                else sv.publish(s, SYSTEM, data)
            )
            out["scenario_id"] = str(sc.id)
    if "{application_id}" in path:
        with world.lab.tx() as s:
            dev = ids.principal_for(s, ids.get_user(s, world.users["dev"]), "session")
            app = applications.create(s, dev, _input(world), today=world.lab.clock().date())
            if path.endswith("/renew"):
                row = s.get(Application, app.id)
                row.status = "authorised"  # the end of B's and C's steps
            out["application_id"] = str(app.id)
    return out
