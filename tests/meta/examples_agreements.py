"""Meta-test examples for agreements, signatures, stamped copies and the steward's actions on
authorisations.  ``setup`` adds a platform organisation with an operator, an enterprise with a
developer and a scenario; ``fill`` makes a fresh object for every call (an approved application,
an agreement waiting for signatures, an authorisation in the state the route needs)."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import Any

from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.storage.authorisation_models import Agreement, AgreementAttachment, Authorisation
from countylab.storage.models import Project
from countylab.storage.operations_models import Application, Scenario
from tests.meta.example import Example
from tests.support import PASSWORD

_PDF = b"%PDF-1.7\n% meta-test agreement\n"
_LAST: dict[str, str] = {}  # the sha256 of the agreement the last fill made (the sign body reads it)


class _SignBody(dict[str, Any]):
    """The sign form's body: the hash of the agreement made for this very call."""

    def items(self) -> Any:  # type: ignore[override]
        return {"sha256": _LAST.get("sha256", ""), "password": PASSWORD}.items()


_REASON = {"reason": "发现异常查询，暂停核查"}
_SCAN = ("scan.pdf", _PDF)

EXAMPLES: dict[tuple[str, str], Any] = {
    ("POST", "/api/applications/{approved_application_id}/agreement"): Example("agr_operator", {}),
    ("POST", "/api/agreements/{agreement_id}/sign"): Example("agr_dev", _SignBody()),
    ("POST", "/api/agreements/{agreement_id}/attachments"): Example("agr_operator", files=_SCAN),  # type: ignore[arg-type]
    ("POST", "/api/authorisations/{authorisation_id}/suspend"): Example("steward", _REASON),
    ("POST", "/api/authorisations/{authorisation_id}/resume"): Example("steward", _REASON),
    ("POST", "/api/authorisations/{authorisation_id}/revoke"): Example("steward", _REASON),
    ("POST", "/applications/{approved_application_id}/agreement"): Example(
        "agr_operator", {"extra_clauses": "补充"}
    ),
    ("POST", "/agreements/{agreement_id}/sign"): Example("agr_dev", _SignBody()),
    ("POST", "/agreements/{agreement_id}/attach"): Example("agr_operator", files=_SCAN),  # type: ignore[arg-type]
    ("POST", "/ops/authorisations/{authorisation_id}/suspend"): Example("steward", _REASON),
    ("POST", "/ops/authorisations/{authorisation_id}/resume"): Example("steward", _REASON),
    ("POST", "/ops/authorisations/{authorisation_id}/revoke"): Example("steward", _REASON),
}


def setup(world: Any) -> None:
    with world.lab.tx() as s:
        platform = ids.create_org(s, SYSTEM, name="县大数据中心", kind="platform")
        company = ids.create_org(s, SYSTEM, name="青禾康养科技有限公司", kind="enterprise")
        for name, roles, org in (
            ("agr_operator", ["operator"], platform),
            ("agr_dev", ["developer"], company),
        ):
            world.users[name] = ids.create_user(
                s, SYSTEM, username=name, password=PASSWORD, display_name=name, roles=roles, org_id=org.id
            ).id
        scenario = Scenario(title="居家养老服务需求预测", org_id=platform.id, status="collecting")
        s.add(scenario)
        s.flush()
        world.agr = {"company": company.id, "scenario": scenario.id, "n": 0}
    # one of each for the read routes (tests/meta/test_reads_do_not_write.py)
    auth_id = fill(world, "/api/authorisations/{authorisation_id}/revoke", "steward")["authorisation_id"]
    with world.lab.tx() as s:
        auth = s.get(Authorisation, int(auth_id))
        assert auth is not None
        scan = AgreementAttachment(
            agreement_id=auth.agreement_id,
            filename="scan.pdf",
            media_type="application/pdf",
            sha256=hashlib.sha256(_PDF).hexdigest(),
            size=len(_PDF),
            content=_PDF,
        )
        s.add(scan)
        s.flush()
        world.values.update(
            agreement_id=str(auth.agreement_id),
            attachment_id=str(scan.id),
            authorisation_id=auth_id,
            approved_application_id=str(auth.application_id),
        )


def _application(world: Any, s: Any, status: str) -> Application:
    world.agr["n"] += 1
    today = date.today()
    app = Application(
        number=f"SQ-META-{world.agr['n']:04d}",
        scenario_id=world.agr["scenario"],
        org_id=world.agr["company"],
        applicant_id=world.users["agr_dev"],
        title="养老需求预测",
        purpose="public_good",
        channels=["dp_query"],
        starts_on=today,
        ends_on=today + timedelta(days=90),
        status=status,
    )
    s.add(app)
    s.flush()
    return app


def _agreement(world: Any, s: Any, app: Application) -> Agreement:
    pdf = _PDF + str(app.id).encode()
    row = Agreement(
        application_id=app.id,
        version=1,
        number=f"XY-{app.number}-v1",
        status="signing",
        terms={},
        extra_clauses="",
        pdf=pdf,
        sha256=hashlib.sha256(pdf).hexdigest(),
    )
    s.add(row)
    s.flush()
    _LAST["sha256"] = row.sha256
    return row


def fill(world: Any, path: str, actor: str) -> dict[str, str]:
    if "{approved_application_id}" in path:
        with world.lab.tx() as s:
            return {"approved_application_id": str(_application(world, s, "approved").id)}
    if "{agreement_id}" in path:
        with world.lab.tx() as s:
            return {"agreement_id": str(_agreement(world, s, _application(world, s, "signing")).id)}
    if "{authorisation_id}" in path:
        with world.lab.tx() as s:
            app = _application(world, s, "authorised")
            agreement = _agreement(world, s, app)
            project = Project(slug=f"meta-auth-{app.id}", title="授权项目", org_id=world.agr["company"])
            s.add(project)
            s.flush()
            today = date.today()
            auth = Authorisation(
                application_id=app.id,
                latest_application_id=app.id,
                agreement_id=agreement.id,
                project_id=project.id,
                org_id=world.agr["company"],
                scenario_id=world.agr["scenario"],
                purpose="public_good",
                channels=["dp_query"],
                starts_on=today,
                ends_on=today + timedelta(days=90),
                status="suspended" if path.endswith("/resume") else "active",
                status_reason="",
            )
            s.add(auth)
            s.flush()
            return {"authorisation_id": str(auth.id)}
    return {}
