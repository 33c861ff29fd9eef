"""Attacks on an authorisation (无场景不授权): a project works with EXACTLY the approved datasets,
columns and channels, and only while its authorisation is in force.

Each attempt goes through the real entry point: a DP query through the API (the in-process
gateway answers for real on the tiny demo county), a job submission through the compute center,
a prediction through model serving, a signature through the API."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from countylab.errors import Conflict, PermissionDenied
from countylab.identity import projects as prj
from countylab.identity.access import SYSTEM
from countylab.operations import authorisations as auths
from countylab.operations.terms import Channel
from countylab.storage.airlock_models import RegisteredModel
from countylab.storage.jobs_models import Job
from countylab.storage.operations_models import Accreditation
from tests.jobs_e2e import conftest as jobs_conftest
from tests.operations import agreement_helpers as h
from tests.privacy_gateway import conftest as pg

pytestmark = pytest.mark.slow
demo_template = pg.demo_template
bwrap = jobs_conftest.bwrap
COUNT_BY_TOWN = "SELECT town_code, COUNT(*) FROM residents GROUP BY town_code"


@pytest.fixture
def county(tmp_path, demo_template):
    lab = h.county_lab(tmp_path, demo_template)
    yield lab
    lab.close()


@pytest.fixture
def project(county):
    """residents for DP queries (columns restricted), households for sandbox jobs only."""
    a = h.approved(
        county,
        {"residents": ("town_code", "age", "lives_alone"), "households": None},
        channels=(Channel.dp_query, Channel.sandbox_job),
    )
    pid = h.authorised(county, a)
    with county.tx() as s:  # households: jobs only (the security officer's review, per dataset)
        from countylab.storage.authorisation_models import GrantTerms
        from countylab.storage.models import Grant

        g = s.execute(
            select(Grant).where(Grant.project_id == pid, Grant.dataset_id == a.datasets["households"])
        ).scalar_one()
        s.get(GrantTerms, g.id).channels = ["sandbox_job"]
    return pid, a


def job_folder(tmp_path: Path, dataset: str) -> Path:
    folder = tmp_path / f"code-{dataset}-{len(list(tmp_path.glob('code-*')))}"
    folder.mkdir()
    (folder / "main.py").write_text("print('hi')\n")
    (folder / "countylab.yaml").write_text(
        f"version: 1\nactions:\n  main:\n    run: python main.py\n    datasets: [{dataset}]\n"
        "    outputs:\n      - {path: out.csv, kind: table}\n"
        "    resources: {cpu: 1, memory_mb: 256, time_s: 60}\n"
    )
    return folder


def submit(lab, tmp_path, pid, dataset):
    with lab.tx() as s:
        return lab.jobs.service.submit(
            s, h.principal(lab, "developer"), pid, job_folder(tmp_path, dataset)
        ).id


def test_exactly_the_approved_datasets_columns_and_channels(county, project, tmp_path):
    pid, _a = project
    dev = h.client(county, "developer")
    ok = pg.ask(dev, COUNT_BY_TOWN, pid, epsilon=0.5)
    assert ok.status_code == 200, ok.text  # an approved dataset and column: answered
    r = pg.ask(dev, "SELECT town_code, AVG(income) FROM residents GROUP BY town_code", pid, epsilon=0.5)
    assert r.status_code == 403 and "income" in r.json()["error"]["message"]  # a column not approved
    r = pg.ask(dev, "SELECT COUNT(*) FROM households", pid, epsilon=0.5)
    assert r.status_code == 403 and r.json()["error"]["details"]["reason"] == "channel"  # jobs only
    r = pg.ask(dev, "SELECT COUNT(*) FROM farmland_plots", pid, epsilon=0.5)
    assert r.status_code in (404, 422), r.text  # a dataset not approved at all is not there
    assert "farmland_plots" in r.text
    with county.tx() as s:  # residents: DP queries only, from now on
        _terms(s, pid, "residents").channels = ["dp_query"]
    with pytest.raises(PermissionDenied) as refused:  # a sandbox job on a DP-only dataset
        submit(county, tmp_path, pid, "residents")
    assert refused.value.details["reason"] == "channel"
    job_id = submit(county, tmp_path, pid, "households")  # the approved channel: accepted
    with county.read() as s:
        assert s.get(Job, job_id).state in ("queued", "pending")


def _terms(s, pid, name):
    from countylab.storage.authorisation_models import GrantTerms
    from countylab.storage.models import Dataset, Grant

    g = s.execute(
        select(Grant)
        .join(Dataset, Dataset.id == Grant.dataset_id)
        .where(Grant.project_id == pid, Dataset.name == name)
    ).scalar_one()
    return s.get(GrantTerms, g.id)


# A job that reports, from inside the sandbox, every file it can find under /data with the
# columns its Parquet schema names, and whether any byte spells an unapproved column's name.
SNOOP = """
import csv, os
import pyarrow.parquet as pq
found = []
for root, _dirs, files in os.walk('/data'):
    for f in files:
        p = os.path.join(root, f)
        raw = open(p, 'rb').read()
        names = pq.ParquetFile(p).schema_arrow.names if p.endswith('.parquet') else []
        leaks = [w for w in ('income', 'id_number', 'name', 'phone') if w.encode() in raw]
        found.append((p, '|'.join(sorted(names)), '|'.join(leaks), pq.ParquetFile(p).metadata.num_rows))
with open('/outbox/out.csv', 'w', newline='') as fh:
    csv.writer(fh).writerows([('path', 'columns', 'leaks', 'rows'), *found])
"""


@pytest.mark.usefixtures("bwrap")
def test_a_job_on_a_column_restricted_dataset_sees_only_the_approved_columns(county, project, tmp_path):
    """Approved for sandbox jobs on three columns of residents: the job runs, in the real
    sandbox, on a folder whose files hold those three columns and nothing that spells another."""
    import csv

    from tests.jobs_e2e.e2e_helpers import wait_state

    pid, _a = project
    folder = job_folder(tmp_path, "residents")
    (folder / "main.py").write_text(SNOOP)
    with county.tx() as s:
        job_id = county.jobs.service.submit(s, h.principal(county, "developer"), pid, folder).id
    county.jobs.start()
    assert wait_state(county, job_id, {"succeeded", "failed", "killed"}, timeout=120) == "succeeded"
    outbox = county.settings.data_dir / "jobs" / "outbox" / str(pid) / str(job_id) / "attempt-1" / "main"
    rows = list(csv.DictReader((outbox / "out.csv").open()))
    assert rows and all(r["path"].startswith("/data/residents/") for r in rows), rows
    assert {r["columns"] for r in rows} == {"age|lives_alone|town_code"}, rows
    assert all(r["leaks"] == "" for r in rows), rows
    with county.read() as s:
        from countylab.catalog import service as catalog

        total = catalog.get_by_name(s, "residents").row_count
    assert sum(int(r["rows"]) for r in rows) == total  # every row, three columns
    # the same grant unrestricted: the job would see every column (positive control)
    with county.tx() as s:
        _terms(s, pid, "residents").columns = None
    with county.read() as s:
        folders = county.jobs.datasets(s, pid)
    assert "income" in pq_columns(folders["residents"])


def pq_columns(folder: Path) -> set[str]:
    import pyarrow.parquet as pq

    return {n for f in folder.glob("*.parquet") for n in pq.ParquetFile(f).schema_arrow.names}


def test_after_expiry_suspension_and_revocation_nothing_works(county, project, tmp_path):
    pid, a = project
    dev = h.client(county, "developer")
    running = submit(county, tmp_path, pid, "households")
    with county.tx() as s:
        s.get(Job, running).state = "running"  # as if a worker had claimed it
    county.clock = lambda: (
        datetime.combine(a.terms.ends_on + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=2)
    )
    r = pg.ask(dev, COUNT_BY_TOWN, pid, epsilon=0.5)
    assert r.status_code == 403
    msg = r.json()["error"]["message"]
    assert a.terms.ends_on.isoformat() in msg and a.number in msg  # names the application and the date
    with pytest.raises(PermissionDenied, match="ended on"):
        submit(county, tmp_path, pid, "households")
    result = county.expiry.run_once()
    assert result.expired and result.jobs_stopped == 1
    with county.read() as s:
        assert s.get(Job, running).cancel_requested  # the compute center's cancel path
        assert auths.for_project(s, pid).status == "expired"


def test_suspend_resume_revoke(county, project, tmp_path):
    pid, _a = project
    dev = h.client(county, "developer")
    steward = h.client(county, "steward")
    with county.read() as s:
        auth_id = auths.for_project(s, pid).id
    assert (
        h.client(county, "operator")
        .post(f"/api/authorisations/{auth_id}/suspend", json={"reason": "x"})
        .status_code
        == 403
    )
    assert steward.post(f"/api/authorisations/{auth_id}/suspend", json={"reason": ""}).status_code == 422
    r = steward.post(f"/api/authorisations/{auth_id}/suspend", json={"reason": "发现异常查询，暂停核查"})
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    r = pg.ask(dev, COUNT_BY_TOWN, pid, epsilon=0.5)
    assert r.status_code == 403 and "发现异常查询" in r.json()["error"]["message"]
    assert (
        steward.post(f"/api/authorisations/{auth_id}/resume", json={"reason": "核查完毕"}).status_code == 200
    )
    assert pg.ask(dev, COUNT_BY_TOWN, pid, epsilon=0.5).status_code == 200
    assert (
        steward.post(f"/api/authorisations/{auth_id}/revoke", json={"reason": "违反协议第七条"}).status_code
        == 200
    )
    assert (
        steward.post(f"/api/authorisations/{auth_id}/resume", json={"reason": "再试"}).status_code == 409
    )  # final
    assert pg.ask(dev, COUNT_BY_TOWN, pid, epsilon=0.5).status_code == 403


def test_a_removed_member_and_an_expired_accreditation(county, project):
    pid, _a = project
    with county.tx() as s:  # the owner adds a colleague without training: refused at use
        prj.add_member(s, SYSTEM, pid, username="researcher")
        for row in s.execute(
            select(Accreditation).where(Accreditation.user_id == h.uid(county, "researcher"))
        ).scalars():
            s.delete(row)
    r = pg.ask(h.client(county, "researcher"), COUNT_BY_TOWN, pid, epsilon=0.5)
    assert r.status_code == 403 and r.json()["error"]["details"]["reason"] == "accreditation"
    dev = h.client(county, "developer")
    with county.tx() as s:
        prj.remove_member(s, SYSTEM, pid, h.uid(county, "researcher"))
    assert pg.ask(h.client(county, "researcher"), COUNT_BY_TOWN, pid, epsilon=0.5).status_code == 403
    assert pg.ask(dev, COUNT_BY_TOWN, pid, epsilon=0.5).status_code == 200


def test_a_model_of_an_ended_authorisation_stops_answering(county, project):
    pid, a = project
    with county.tx() as s:
        job = Job(
            project_id=pid,
            submitted_by=h.uid(county, "developer"),
            name="m",
            state="succeeded",
            spec={},
            spec_yaml="",
            code_path="",
            code_sha256="",
        )
        s.add(job)
        s.flush()
        model = RegisteredModel(
            project_id=pid,
            job_id=job.id,
            name="需求模型",
            file_name="m.joblib",
            format="joblib",
            stored_path="/nonexistent",
            sha256="0" * 64,
            card={},
            state="approved",
        )
        s.add(model)
        s.flush()
        model_id = model.id
    dev = h.client(county, "developer")
    unserved = dev.post(f"/api/models/{model_id}/predict", json={"rows": [[1]]})
    assert unserved.status_code == 403 and unserved.json()["error"]["details"]["reason"] == "channel"
    with county.tx() as s:  # the same project, authorised for model serving as well
        auths.for_project(s, pid).channels = ["dp_query", "model_serving", "sandbox_job"]
    before = dev.post(f"/api/models/{model_id}/predict", json={"rows": [[1]]})
    assert before.json()["error"]["details"]["reason"] == "untyped_outputs"  # past the authorisation check
    county.clock = lambda: datetime.combine(a.terms.ends_on + timedelta(days=2), datetime.min.time(), UTC)
    after = dev.post(f"/api/models/{model_id}/predict", json={"rows": [[1]]})
    assert after.status_code == 403 and after.json()["error"]["details"]["reason"] == "authorisation_expired"


def test_signature_replay_and_a_changed_pdf(county):
    a = h.approved(county, {"residents": ("town_code",)})
    op = h.client(county, "operator")
    first = op.post(f"/api/applications/{a.application_id}/agreement", json={}).json()
    dev = h.client(county, "developer")
    assert (
        dev.post(
            f"/api/agreements/{first['id']}/sign", json={"sha256": first["sha256"], "password": h.PASSWORD}
        ).status_code
        == 200
    )
    # the developer's signed request, replayed: one signature per party
    again = dev.post(
        f"/api/agreements/{first['id']}/sign", json={"sha256": first["sha256"], "password": h.PASSWORD}
    )
    assert again.status_code == 409
    # a changed PDF (one byte) has another hash: the operator's signature on it is refused
    changed = bytearray(op.get(f"/api/agreements/{first['id']}/pdf").content)
    changed[-10] ^= 1
    forged = hashlib.sha256(bytes(changed)).hexdigest()
    r = op.post(f"/api/agreements/{first['id']}/sign", json={"sha256": forged, "password": h.PASSWORD})
    assert r.status_code == 409 and r.json()["error"]["details"]["reason"] == "hash_mismatch"
    # a new version voids the earlier signature: replaying it on the new version is refused
    second = op.post(f"/api/applications/{a.application_id}/agreement", json={"replace_signed": True}).json()
    r = dev.post(
        f"/api/agreements/{first['id']}/sign", json={"sha256": first["sha256"], "password": h.PASSWORD}
    )
    assert r.status_code == 409
    r = dev.post(
        f"/api/agreements/{second['id']}/sign", json={"sha256": first["sha256"], "password": h.PASSWORD}
    )
    assert r.status_code == 409 and r.json()["error"]["details"]["reason"] == "hash_mismatch"


def test_emergency_grant_is_admin_only_with_reason_and_end_date(county):
    from tests.privacy_gateway.conftest import project_id

    pid = project_id(county)
    with county.read() as s:
        from countylab.catalog import service as catalog

        ds = catalog.get_by_name(s, "farmland_plots").id
    end = (county.clock().date() + timedelta(days=14)).isoformat()
    steward, admin = h.client(county, "steward"), h.client(county, "admin")
    assert (
        steward.post(
            f"/api/projects/{pid}/grants", json={"dataset_id": ds, "reason": "x" * 20, "ends_on": end}
        ).status_code
        == 403
    )
    assert (
        admin.post(f"/api/projects/{pid}/grants", json={"dataset_id": ds, "ends_on": end}).status_code == 422
    )
    assert (
        admin.post(
            f"/api/projects/{pid}/grants", json={"dataset_id": ds, "reason": "防汛应急需要立即核查受灾地块"}
        ).status_code
        == 422
    )
    r = admin.post(
        f"/api/projects/{pid}/grants",
        json={"dataset_id": ds, "reason": "防汛应急需要立即核查受灾地块", "ends_on": end},
    )
    assert r.status_code == 201, r.text
    report = h.client(county, "operator").get("/api/disclosure").json()
    assert [g["reason"] for g in report["emergency_grants"]] == ["防汛应急需要立即核查受灾地块"]
    steward_p = h.principal(county, "steward")
    with pytest.raises(PermissionDenied), county.tx() as s:  # people do not grant by hand any more
        prj.grant_dataset(s, steward_p, pid, ds)
    with pytest.raises(Conflict), county.tx() as s:
        prj.grant_dataset(s, SYSTEM, pid, ds, note="系统")


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT town_code, AVG("INCOME") FROM residents GROUP BY town_code',  # quoted, other case
        "SELECT r.town_code, SUM(r.income) FROM residents r GROUP BY r.town_code",  # qualified
        "SELECT town_code, COUNT(*) FROM residents WHERE income > 5000 GROUP BY town_code",  # filter only
        "SELECT town_code, COUNT(*) FROM residents WHERE name LIKE '张%' GROUP BY town_code",  # PII filter
    ],
)
def test_an_unapproved_column_is_refused_however_it_is_named(county, project, sql):
    """Variants of the column attack: a column outside the approved terms never reaches the engine,
    whether quoted in another case, qualified by an alias, or used only in a filter; nothing spent."""
    pid, _a = project
    dev = h.client(county, "developer")
    r = pg.ask(dev, sql, pid, epsilon=0.5)
    assert r.status_code in (403, 404, 422), (sql, r.status_code, r.text)
    assert r.json()["error"]["message"]
    with county.read() as s:
        from countylab.storage.privacy_models import PrivacyBudget

        spent = sum(b.epsilon_spent for b in s.query(PrivacyBudget).filter_by(project_id=pid))
    assert spent == 0.0


def test_narrowing_the_approved_columns_rebinds_the_next_job_narrower(county, project):
    """A projection built for a wider approval is never reused once the approval narrows, and a
    case-variant spelling of an approved column does not widen it either."""
    pid, _a = project
    with county.read() as s:
        before = county.jobs.datasets(s, pid)["residents"]
    assert pq_columns(before) == {"town_code", "age", "lives_alone"}
    with county.tx() as s:
        _terms(s, pid, "residents").columns = ["TOWN_CODE", "Age"]
    with county.read() as s:
        after = county.jobs.datasets(s, pid)["residents"]
    assert after != before and pq_columns(after) == {"town_code", "age"}
    with county.tx() as s:
        _terms(s, pid, "residents").columns = []  # nothing approved: no column at all
    with county.read() as s:
        empty = county.jobs.datasets(s, pid)["residents"]
    assert pq_columns(empty) == set()
