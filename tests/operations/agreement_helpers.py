"""Helpers of the agreement and authorisation tests: an approved application on the tiny demo
county (real Parquet data, so DP queries and sandbox jobs really run), its terms, signatures.

The approval workflow is engineer B's; these tests build :class:`ApprovedTerms` directly (the
brief's contract) and move the application to ``approved`` through the one transition table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from countylab.bootstrap import DEMO_PASSWORD
from countylab.catalog import service as catalog
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM, Principal
from countylab.lab import Lab
from countylab.operations import accreditation, agreements, applications, scenarios
from countylab.operations.applications import ApplicationInput, RequestedDataset
from countylab.operations.reauth import PasswordConfirmed
from countylab.operations.scenarios import Offer, ScenarioInput
from countylab.operations.states import ApplicationStatus, move
from countylab.operations.terms import ApprovedTerms, Channel, DatasetTerms, QuotaTerms
from countylab.storage.models import Org, User
from countylab.storage.operations_models import Application
from countylab.web.app import create_app


def uid(lab: Lab, username: str) -> int:
    with lab.read() as s:
        return int(s.execute(select(User.id).where(User.username == username)).scalar_one())


def principal(lab: Lab, username: str) -> Principal:
    with lab.read() as s:
        user = s.execute(select(User).where(User.username == username)).scalar_one()
        return ids.principal_for(s, user, "session")


def client(lab: Lab, username: str) -> TestClient:
    with lab.tx() as s:
        token = ids.create_token(s, SYSTEM, user_id=uid(lab, username), name="t", days=1).token
    return TestClient(
        create_app(lab), headers={"Authorization": f"Bearer {token}"}, raise_server_exceptions=False
    )


def accredit(lab: Lab, username: str, *, expires_on: date | None = None) -> None:
    today = lab.clock().date()
    with lab.tx() as s:
        accreditation.record(
            s,
            SYSTEM,
            user_id=uid(lab, username),
            course="数据安全与隐私保护培训",
            certificate_no=f"AQ-{username}",
            passed_on=today - timedelta(days=30),
            expires_on=expires_on or today + timedelta(days=700),
        )


@dataclass
class Approved:
    application_id: int
    number: str
    terms: ApprovedTerms
    datasets: dict[str, int]


def approved(
    lab: Lab,
    datasets: dict[str, tuple[str, ...] | None],
    *,
    channels: tuple[Channel, ...] = (Channel.dp_query,),
    applicant: str = "developer",
    members: tuple[str, ...] = (),
    days: int = 60,
    epsilon: float | None = 2.0,
    title: str = "居家养老服务需求预测",
    quota: QuotaTerms | None = None,
) -> Approved:
    """A scenario offering ``datasets`` (name → approved columns), an application by
    ``applicant`` moved to ``approved``, and the terms the security officer would have set."""
    today = lab.clock().date()
    accredit(lab, applicant)
    for m in members:
        accredit(lab, m)
    with lab.tx() as s:
        ids_by_name = {n: catalog.get_by_name(s, n).id for n in datasets}
        civil = s.execute(select(Org.id).where(Org.name == "县民政局")).scalar_one()
        sc = scenarios.publish(
            s,
            SYSTEM,
            ScenarioInput(
                title="居家养老服务需求预测",
                problem="独居老人需求分布不清。",
                org_id=civil,
                field="elderly_care",
                offers=tuple(Offer(i, None) for i in ids_by_name.values()),
                expected_outcome="按乡镇预测需求。",
                apply_from=today - timedelta(days=1),
                apply_until=today + timedelta(days=30),
                visibility="public",
            ),
        )
        actor = principal(lab, applicant)
        app = applications.create(
            s,
            actor,
            ApplicationInput(
                scenario_id=sc.id,
                title=title,
                purpose="public_good",
                datasets=tuple(RequestedDataset(i) for i in ids_by_name.values()),
                channels=tuple(c.value for c in channels),
                member_ids=tuple(uid(lab, m) for m in members),
                starts_on=today,
                ends_on=today + timedelta(days=days),
                expected_outputs="按乡镇的需求表",
                commitments=tuple(applications.COMMITMENTS),
            ),
            today=today,
        )
        applications.submit(s, actor, app.id, today=today)
        row = s.get(Application, app.id)
        assert row is not None
        for state in (ApplicationStatus.in_review, ApplicationStatus.publicising, ApplicationStatus.approved):
            move(s, row, state)
        terms = ApprovedTerms(
            application_id=app.id,
            application_number=row.number,
            scenario_id=sc.id,
            org_id=row.org_id,
            purpose="public_good",
            datasets=tuple(
                DatasetTerms(ids_by_name[n], cols, epsilon=epsilon) for n, cols in datasets.items()
            ),
            channels=frozenset(channels),
            starts_on=today,
            ends_on=today + timedelta(days=days),
            member_ids=(uid(lab, applicant), *(uid(lab, m) for m in members)),
            quota=quota,
            output_rules="最小单元格 10。",
            conditions="仅用于本场景。",
        )
        return Approved(app.id, row.number, terms, ids_by_name)


def draft(lab: Lab, a: Approved, *, by: str = "operator", **kw: Any) -> int:
    with lab.tx() as s:
        return agreements.draft(
            s, principal(lab, by), a.application_id, terms=a.terms, now=lab.clock(), **kw
        ).id


def sign(lab: Lab, agreement_id: int, username: str, sha256: str | None = None) -> agreements.Signed:
    with lab.tx() as s:
        digest = sha256 or agreements.get(s, agreement_id).sha256
        return agreements.sign(
            s,
            principal(lab, username),
            agreement_id,
            sha256=digest,
            confirmed=PasswordConfirmed(uid(lab, username)),
            now=lab.clock(),
        )


def authorised(lab: Lab, a: Approved) -> int:
    """Draft, then both parties sign: the project id."""
    agreement_id = draft(lab, a)
    sign(lab, agreement_id, "developer")
    done = sign(lab, agreement_id, "operator")
    assert done.complete and done.authorisation_id
    with lab.read() as s:
        row = s.get(Application, a.application_id)
        assert row is not None and row.project_id is not None
        return row.project_id


PASSWORD = DEMO_PASSWORD


def county_lab(tmp_path: Any, template: Any) -> Any:
    """A copy of the tiny demo county with the DP gateway in process (see tests/privacy_gateway)."""
    import shutil

    from tests.privacy_gateway.conftest import fast_gateway
    from tests.support import build_lab

    shutil.copytree(template, tmp_path / "lab-data")
    lab = build_lab(tmp_path)
    fast_gateway(lab)
    return lab
