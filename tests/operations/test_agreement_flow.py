"""Agreements: the PDF (Chinese title and organisation names on its first page), versions,
signatures (wrong signer, second signature, outdated version, changed document), and the
authorisation that takes effect with the second signature."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from countylab.errors import Conflict, PermissionDenied
from countylab.operations import agreements
from countylab.storage.authorisation_models import Agreement, Authorisation, GrantTerms
from countylab.storage.models import AuditEvent, Grant, Project
from countylab.storage.operations_models import Application
from tests.operations import agreement_helpers as h
from tests.pdfcheck import first_page_png, ocr_text
from tests.privacy_gateway import conftest as pg

demo_template = pg.demo_template  # the session's demo county, shared with the gateway tests


@pytest.fixture
def county(tmp_path, demo_template):
    lab = h.county_lab(tmp_path, demo_template)
    yield lab
    lab.close()


pytestmark = pytest.mark.slow


@pytest.mark.needs("tesseract")
def test_the_pdf_names_the_agreement_and_both_parties(county):
    a = h.approved(county, {"residents": None})
    agreement_id = h.draft(county, a)
    with county.read() as s:
        row = agreements.get(s, agreement_id)
        pdf = bytes(row.pdf)
        assert row.sha256 == hashlib.sha256(pdf).hexdigest() and row.version == 1
        assert s.get(Application, a.application_id).status == "signing"
    text = ocr_text(first_page_png(pdf)).replace(" ", "")
    assert "授权运营协议" in text
    assert "县大数据中心" in text
    assert "青禾康养科技有限公司" in text


def test_versions_signatures_and_the_authorisation(county):
    lab = county
    a = h.approved(lab, {"residents": None, "households": ("household_id", "town_code")})
    v1 = h.draft(lab, a)
    v2 = h.draft(lab, a, extra_clauses="乙方每季度报告使用情况。")  # before any signature: version 2
    with lab.read() as s:
        versions = agreements.versions(s, a.application_id)
        assert [(x.version, x.status) for x in versions] == [(1, "superseded"), (2, "signing")]
        assert versions[0].pdf  # the old version stays downloadable
    with pytest.raises(Conflict, match="replaced by version 2"):  # an outdated version cannot be signed
        h.sign(lab, v1, "developer")
    with pytest.raises(PermissionDenied, match="not a signer"):  # the wrong person
        h.sign(lab, v2, "researcher")
    with pytest.raises(PermissionDenied, match="sign agreements"):  # the steward holds no agreement.sign
        h.sign(lab, v2, "steward")
    with pytest.raises(Conflict, match="SHA-256 differs"):  # a document other than the current one
        h.sign(lab, v2, "developer", sha256="0" * 64)
    h.sign(lab, v2, "developer")
    with pytest.raises(Conflict, match="already signed"):  # a second signature by the same party
        h.sign(lab, v2, "developer")
    with pytest.raises(
        Conflict, match="already signed by one party"
    ):  # a change after a signature is refused
        h.draft(lab, a, extra_clauses="改动")
    v3 = h.draft(lab, a, extra_clauses="改动", replace_signed=True)  # …unless it is a new version
    with lab.read() as s:
        assert agreements.view(s, agreements.get(s, v3))["waiting_for"] == ["applicant", "platform"]
    h.sign(lab, v3, "operator")
    done = h.sign(lab, v3, "developer")
    assert done.complete and done.authorisation_id
    with lab.read() as s:
        app = s.get(Application, a.application_id)
        assert app.status == "authorised" and app.project_id
        project = s.get(Project, app.project_id)
        assert project.org_id == app.org_id
        assert [(m.user_id, m.role) for m in project.members] == [(h.uid(lab, "developer"), "owner")]
        grants = {
            g.dataset_id: s.get(GrantTerms, g.id)
            for g in s.execute(select(Grant).where(Grant.project_id == project.id)).scalars()
        }
        assert set(grants) == set(a.datasets.values())
        assert grants[a.datasets["households"]].columns == ["household_id", "town_code"]
        assert grants[a.datasets["residents"]].channels == ["dp_query"]
        auth = s.execute(select(Authorisation).where(Authorisation.project_id == project.id)).scalar_one()
        assert auth.ends_on == a.terms.ends_on and auth.status == "active"
        signs = s.execute(select(AuditEvent).where(AuditEvent.action == "agreement.sign")).scalars().all()
        assert {json.loads(e.details)["sha256"] for e in signs} == {
            s.get(Agreement, v3).sha256,
            s.get(Agreement, v2).sha256,
        }
    with pytest.raises(Conflict, match="in force"):  # signed by both: nothing changes any more
        h.draft(lab, a, replace_signed=True)


def test_members_without_accreditation_stop_the_authorisation_whole(county):
    lab = county
    a = h.approved(lab, {"residents": None}, members=("researcher",))
    with lab.tx() as s:  # the researcher's training record is withdrawn before the signatures
        from countylab.storage.operations_models import Accreditation

        for row in s.execute(
            select(Accreditation).where(Accreditation.user_id == h.uid(lab, "researcher"))
        ).scalars():
            s.delete(row)
    agreement_id = h.draft(lab, a)
    h.sign(lab, agreement_id, "developer")
    with pytest.raises(PermissionDenied, match="孙研究"):
        h.sign(lab, agreement_id, "operator")
    with lab.read() as s:  # the refused second signature left nothing behind
        assert s.get(Application, a.application_id).status == "signing"
        assert len(agreements.signatures(s, agreement_id)) == 1
        assert s.execute(select(Authorisation)).first() is None


def test_api_sign_asks_the_password_again(county):
    lab = county
    a = h.approved(lab, {"residents": None})
    operator = h.client(lab, "operator")
    r = operator.post(f"/api/applications/{a.application_id}/agreement", json={})
    assert r.status_code == 201, r.text
    body = r.json()
    pdf = operator.get(f"/api/agreements/{body['id']}/pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    digest = hashlib.sha256(pdf.content).hexdigest()
    assert digest == body["sha256"] == pdf.headers["x-countylab-sha256"]
    dev = h.client(lab, "developer")
    wrong = dev.post(f"/api/agreements/{body['id']}/sign", json={"sha256": digest, "password": "nope"})
    assert wrong.status_code == 401
    ok = dev.post(f"/api/agreements/{body['id']}/sign", json={"sha256": digest, "password": h.PASSWORD})
    assert ok.status_code == 200 and ok.json()["party"] == "applicant" and not ok.json()["complete"]
    done = operator.post(
        f"/api/agreements/{body['id']}/sign", json={"sha256": digest, "password": h.PASSWORD}
    )
    assert done.status_code == 200 and done.json()["complete"], done.text
    scan = dev.post(
        f"/api/agreements/{body['id']}/attachments",
        files={"file": ("盖章.pdf", pdf.content, "application/pdf")},
    )
    assert scan.status_code == 201 and scan.json()["sha256"] == digest
    bad = dev.post(
        f"/api/agreements/{body['id']}/attachments",
        files={"file": ("x.exe", b"MZ...", "application/octet-stream")},
    )
    assert bad.status_code == 422
    shown = dev.get(f"/api/applications/{a.application_id}/agreement").json()
    assert shown["authorisation"]["status"] == "active" and len(shown["attachments"]) == 1
    assert h.client(lab, "researcher").get(f"/api/agreements/{body['id']}").status_code == 403


any_demo_lab = pg.any_demo_lab  # the demo county on SQLite and on PostgreSQL


def test_sign_authorise_and_query_on_both_databases(any_demo_lab):
    """The whole path on SQLite and PostgreSQL: draft, both signatures, a DP query on the approved
    dataset answers, one on another channel is refused, expiry refuses with the date."""
    from datetime import UTC, datetime, timedelta

    lab = any_demo_lab
    a = h.approved(lab, {"residents": ("town_code", "age"), "households": None})
    pid = h.authorised(lab, a)
    dev = h.client(lab, "developer")
    assert (
        pg.ask(
            dev, "SELECT town_code, COUNT(*) FROM residents GROUP BY town_code", pid, epsilon=0.5
        ).status_code
        == 200
    )
    refused = pg.ask(dev, "SELECT COUNT(*) FROM residents WHERE income > 1", pid, epsilon=0.5)
    assert refused.status_code == 403 and "income" in refused.text
    lab.clock = lambda: datetime.combine(a.terms.ends_on + timedelta(days=1), datetime.min.time(), UTC)
    late = pg.ask(dev, "SELECT town_code, COUNT(*) FROM residents GROUP BY town_code", pid, epsilon=0.5)
    assert late.status_code == 403 and a.terms.ends_on.isoformat() in late.text
    assert lab.expiry.run_once().expired


def test_the_application_page_shows_the_agreement(county):
    a = h.approved(county, {"residents": ("town_code",)})
    op = h.client(county, "operator")
    page = op.get(f"/applications/{a.application_id}")
    assert page.status_code == 200 and 'id="draft-agreement-form"' in page.text  # approved: draft it here
    agreement_id = h.draft(county, a)
    page = h.client(county, "developer").get(f"/applications/{a.application_id}")
    assert f'href="/agreements/{agreement_id}"' in page.text and "draft-agreement-form" not in page.text
