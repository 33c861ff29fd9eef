"""In Chromium: the operator drafts the agreement from the application page, the developer and
the operator each download it and sign with their password, and the project appears."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import Session, live_server
from tests.operations import agreement_helpers as h
from tests.privacy_gateway import conftest as pg

pytestmark = [pytest.mark.browser, pytest.mark.slow]
demo_template = pg.demo_template


@pytest.fixture
def county(tmp_path, demo_template):
    lab = h.county_lab(tmp_path, demo_template)
    yield lab
    lab.close()


def test_both_parties_sign_and_the_project_appears(browser: Any, county, artifacts: Any) -> None:
    a = h.approved(county, {"residents": ("town_code", "age"), "households": None})
    with live_server(county) as url:
        op = Session(browser, url, artifacts, viewport={"width": 1280, "height": 1000})
        op.login("operator", h.PASSWORD)
        agreement_id = h.draft(county, a)  # the application page's form is engineer A's page
        op.go(f"/agreements/{agreement_id}")
        assert "签署中" in op.page.locator("#agreement-status").inner_text()
        assert op.page.locator("#agreement-sha256").inner_text().strip()
        op.shot("agreement-drafted")

        dev = Session(browser, url, artifacts, viewport={"width": 1280, "height": 1000})
        dev.login("developer", h.PASSWORD)
        dev.go(f"/agreements/{agreement_id}")
        with dev.page.expect_download() as got:
            dev.page.click("#agreement-pdf")
        assert got.value.suggested_filename.endswith(".pdf")
        dev.page.fill("#sign-form input[name=password]", h.PASSWORD)
        dev.page.click("#sign-form button[type=submit]")
        dev.page.wait_for_url(f"{url}/agreements/{agreement_id}")
        assert "刘开发" in dev.page.locator("#signatures-table").inner_text()
        assert dev.page.locator("#sign-form").count() == 0  # one signature per party
        dev.shot("agreement-applicant-signed")

        op.go(f"/agreements/{agreement_id}")
        op.page.fill("#sign-form input[name=password]", h.PASSWORD)
        op.page.click("#sign-form button[type=submit]")
        op.page.wait_for_url(f"{url}/agreements/{agreement_id}")
        assert "已签署生效" in op.page.locator("#agreement-status").inner_text()
        project = op.page.locator("#authorised-project")
        assert "居家养老服务需求预测" in project.inner_text()
        op.shot("agreement-both-signed")

        dev.go(f"/agreements/{agreement_id}")
        dev.page.click("#authorised-project a")
        dev.page.wait_for_url(f"{url}/projects/*")
        assert dev.page.locator("#grants-table tbody tr").count() == 2  # exactly the approved datasets
        dev.shot("authorised-project")

        st = Session(browser, url, artifacts, viewport={"width": 1400, "height": 900})
        st.login("steward", h.PASSWORD)
        st.go("/ops/authorisations")
        assert "生效中" in st.page.locator("#authorisations-table").inner_text()
        st.shot("authorisations")
        st.go("/ops/disclosure")
        assert a.number in st.page.locator("#disclosure-authorisations").inner_text()
        st.shot("disclosure")
        for s in (op, dev, st):
            s.close()
