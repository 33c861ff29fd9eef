"""The expiry sweep reads lab.clock: reminders 30 and 7 days ahead go once each (also across a
restart: a new sweep object over the same database), the end date expires the authorisation,
and the disclosure report lists it, with emergency and system-internal grants, in Excel too."""

from __future__ import annotations

import io
from datetime import UTC, datetime, time, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from countylab.identity import projects as prj
from countylab.identity.access import SYSTEM
from countylab.operations import authorisations as auths
from countylab.operations import disclosure
from countylab.operations.expiry import ExpirySweep
from countylab.storage.authorisation_models import AuthorisationReminder
from countylab.storage.notify_models import Notification
from tests.operations import agreement_helpers as h
from tests.privacy_gateway import conftest as pg

pytestmark = pytest.mark.slow
demo_template = pg.demo_template


@pytest.fixture
def county(tmp_path, demo_template):
    lab = h.county_lab(tmp_path, demo_template)
    yield lab
    lab.close()


def at(day) -> datetime:
    return datetime.combine(day, time(9, 0), UTC)


def expiring(lab) -> int:
    with lab.read() as s:
        return int(
            s.execute(
                select(func.count(Notification.id)).where(Notification.kind == "authorisation.expiring")
            ).scalar_one()
        )


def test_reminders_once_each_then_expiry_and_disclosure(county):
    a = h.approved(county, {"residents": ("town_code",)}, days=40)
    pid = h.authorised(county, a)
    end = a.terms.ends_on
    sweep = ExpirySweep(county.tx, lambda: county.clock(), county.jobs.service)
    assert sweep.run_once().reminded == [] and expiring(county) == 0  # 40 days ahead: nothing yet
    county.clock = lambda: at(end - timedelta(days=29))
    assert [d for _i, d in sweep.run_once().reminded] == [30]
    assert sweep.run_once().reminded == []  # once
    again = ExpirySweep(county.tx, lambda: county.clock(), None)  # a restarted server
    assert again.run_once().reminded == [] and expiring(county) == 1
    county.clock = lambda: at(end - timedelta(days=6))
    assert [d for _i, d in again.run_once().reminded] == [7]
    assert sweep.run_once().reminded == [] and expiring(county) == 2
    county.clock = lambda: at(end)  # the last day still works
    assert sweep.run_once().expired == []
    county.clock = lambda: at(end + timedelta(days=1))
    done = sweep.run_once()
    assert len(done.expired) == 1 and sweep.run_once().expired == []
    with county.read() as s:
        assert auths.for_project(s, pid).status == "expired"
        assert s.execute(select(func.count(AuthorisationReminder.id))).scalar_one() == 2
    # an emergency grant and a system-internal grant, then the report of the year
    admin = h.client(county, "admin")
    with county.read() as s:
        from countylab.catalog import service as catalog

        farmland = catalog.get_by_name(s, "farmland_plots").id
        towns = catalog.get_by_name(s, "towns").id
    ends = (county.clock().date() + timedelta(days=7)).isoformat()
    r = admin.post(
        f"/api/projects/{pid}/grants",
        json={"dataset_id": farmland, "reason": "防汛应急核查受灾地块面积", "ends_on": ends},
    )
    assert r.status_code == 201, r.text
    with county.tx() as s:
        prj.grant_dataset(s, SYSTEM, pid, towns, note="成果展示预算项目")
    op = h.client(county, "operator")
    report = op.get("/api/disclosure", params={"start": a.terms.starts_on.isoformat()}).json()
    assert [r["status"] for r in report["authorisations"]] == ["已到期"]
    assert report["authorisations"][0]["channels"] == "差分隐私查询"
    assert [g["reason"] for g in report["emergency_grants"]] == ["防汛应急核查受灾地块面积"]
    assert "成果展示预算项目" in [g["reason"] for g in report["system_grants"]]
    assert [c["kind"] for c in report["changes"]] == ["到期"]
    assert h.client(county, "developer").get("/api/disclosure").status_code == 403
    x = op.get("/api/disclosure", params={"start": a.terms.starts_on.isoformat(), "format": "xlsx"})
    assert x.status_code == 200
    wb = load_workbook(io.BytesIO(x.content))
    assert wb.sheetnames == ["授权", "紧急授权", "系统内部授权", "暂停撤销与到期"]
    assert wb["紧急授权"]["E3"].value == "防汛应急核查受灾地块面积"
    with county.read() as s:
        assert disclosure.report(s, SYSTEM, disclosure.Period(end, end))["changes"] == []  # another period
