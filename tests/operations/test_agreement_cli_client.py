"""Agreements and authorisations through the CLI (``countylab agreement|authorisation …``) and
the SDK against a live server: the operator drafts, the developer downloads and signs the PDF
they read, the operator signs with the client, the steward suspends and resumes."""

from __future__ import annotations

import hashlib

import pytest
from typer.testing import CliRunner

from countylab.cli import app
from countylab_client import Client, ConflictError, PermissionDeniedError
from tests.browser import live_server
from tests.operations import agreement_helpers as h
from tests.privacy_gateway import conftest as pg
from tests.support import token_for

pytestmark = pytest.mark.slow
demo_template = pg.demo_template


@pytest.fixture
def county(tmp_path, demo_template):
    lab = h.county_lab(tmp_path, demo_template)
    yield lab
    lab.close()


def test_cli_and_client(county, tmp_path, monkeypatch):
    a = h.approved(county, {"residents": ("town_code", "age")})
    monkeypatch.setenv("COUNTYLAB_LANG", "zh-CN")
    runner = CliRunner()
    with live_server(county) as base:

        def who(name: str) -> list[str]:
            return ["--url", base, "--token", token_for(county, h.uid(county, name))]

        r = runner.invoke(
            app, ["agreement", "draft", str(a.application_id), "--extra", "按季报告", *who("operator")]
        )
        assert r.exit_code == 0 and "XY-" in r.output, r.output
        shown = runner.invoke(app, ["agreement", "show", str(a.application_id), "--json", *who("developer")])
        assert shown.exit_code == 0, shown.output
        dev = Client(base, token=token_for(county, h.uid(county, "developer")))
        agreement = dev.agreement_of(a.application_id)
        pdf = tmp_path / "协议.pdf"
        r = runner.invoke(
            app, ["agreement", "download", str(agreement["id"]), "-o", str(pdf), *who("developer")]
        )
        assert r.exit_code == 0 and hashlib.sha256(pdf.read_bytes()).hexdigest() in r.output, r.output
        wrong = runner.invoke(
            app,
            [
                "agreement",
                "sign",
                str(agreement["id"]),
                "--pdf",
                str(pdf),
                "--password",
                "nope",
                *who("developer"),
            ],
        )
        assert wrong.exit_code != 0
        r = runner.invoke(
            app,
            [
                "agreement",
                "sign",
                str(agreement["id"]),
                "--pdf",
                str(pdf),
                "--password",
                h.PASSWORD,
                *who("developer"),
            ],
        )
        assert r.exit_code == 0 and "applicant" in r.output, r.output
        with pytest.raises(ConflictError):  # a second signature of the same party
            dev.sign_agreement(agreement["id"], h.PASSWORD)
        operator = Client(base, token=token_for(county, h.uid(county, "operator")))
        done = operator.sign_agreement(agreement["id"], h.PASSWORD)
        assert done["complete"] and done["authorisation_id"]
        scan = tmp_path / "scan.pdf"
        scan.write_bytes(pdf.read_bytes())
        r = runner.invoke(app, ["agreement", "attach", str(agreement["id"]), str(scan), *who("developer")])
        assert r.exit_code == 0, r.output
        listed = runner.invoke(app, ["authorisation", "list", *who("steward")], terminal_width=200)
        assert listed.exit_code == 0 and "生效中" in listed.output, listed.output
        auth_id = done["authorisation_id"]
        with pytest.raises(PermissionDeniedError):
            operator.change_authorisation(auth_id, "suspend", "运营方无权暂停")
        r = runner.invoke(
            app, ["authorisation", "suspend", str(auth_id), "--reason", "核查异常查询", *who("steward")]
        )
        assert r.exit_code == 0 and "已暂停" in r.output, r.output
        steward = Client(base, token=token_for(county, h.uid(county, "steward")))
        assert steward.change_authorisation(auth_id, "resume", "核查完毕")["status"] == "active"
        assert steward.authorisation(auth_id)["events"][-1]["kind"] == "resumed"
        assert operator.disclosure()["changes"][-1]["kind"] == "恢复"
