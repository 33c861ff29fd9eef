"""Dummy data (模拟数据) for a project has exactly the columns a job of that project will see.

An authorisation may approve some columns of a dataset only; a job then finds a projection at
``/data/<name>/`` (:func:`countylab.jobs.granted.bind_projection`).  Code developed on the
catalog's whole schema could name a column the real run will not have, so
``GET /api/datasets/{id}/dummy?project_id=N``, the SDK's ``dummy_data(project_id=…)`` and
``countylab run --project …`` give the project's columns, and refuse what a job of the project
cannot read at all.  Fixtures: the adversarial suite's county and its ``project`` (residents
approved on town_code, age and lives_alone; households for sandbox jobs only)."""

from __future__ import annotations

import io
import json

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from countylab.catalog import service as catalog
from countylab.cli import app, main
from countylab.dummy.output import is_dummy
from countylab.storage.models import AuditEvent, Project
from tests.attacks import test_authorisation_enforcement as attacks
from tests.jobs_e2e import conftest as jobs_conftest
from tests.jobs_e2e.e2e_helpers import serve
from tests.operations import agreement_helpers as h
from tests.privacy_gateway import conftest as pg
from tests.support import token_for

pytestmark = pytest.mark.slow
demo_template = pg.demo_template
bwrap = jobs_conftest.bwrap
county = attacks.county
project = attacks.project
job_folder = attacks.job_folder
_terms = attacks._terms
APPROVED = {"age", "lives_alone", "town_code"}


def dataset_id(lab, name: str) -> int:
    with lab.read() as s:
        return catalog.get_by_name(s, name).id


def dummy_columns(client, ds: int, **params) -> set[str]:
    r = client.get(f"/api/datasets/{ds}/dummy", params={"rows": 50, "format": "parquet", **params})
    assert r.status_code == 200, r.text
    table = pq.read_table(io.BytesIO(r.content))
    assert is_dummy(table) and table.num_rows == 50  # still marked as dummy data, rows as asked
    return set(table.column_names)


def denials(lab, pid: int) -> list[AuditEvent]:
    with lab.read() as s:
        return list(
            s.execute(
                select(AuditEvent).where(
                    AuditEvent.action == "permission.denied", AuditEvent.target == f"project:{pid}"
                )
            ).scalars()
        )


def test_dummy_data_for_a_project_has_only_the_approved_columns(county, project):
    pid, _a = project
    dev = h.client(county, "developer")
    residents = dataset_id(county, "residents")
    everything = dummy_columns(dev, residents)  # no project: the catalog's whole schema, as before
    assert everything > APPROVED and "income" in everything
    assert dummy_columns(dev, residents, project_id=pid) == APPROVED
    r = dev.get(f"/api/datasets/{residents}/dummy", params={"rows": 5, "project_id": pid})  # CSV too
    assert r.status_code == 200 and set(pacsv.read_csv(io.BytesIO(r.content)).column_names) == APPROVED
    # the page's link keeps the project
    page = dev.get(f"/datasets/{residents}/dummy.csv?project_id={pid}", follow_redirects=False)
    assert page.status_code == 303 and f"project_id={pid}" in page.headers["location"]
    # households: sandbox jobs on every column, so its dummy data for the project is whole
    households = dataset_id(county, "households")
    assert dummy_columns(dev, households, project_id=pid) == dummy_columns(dev, households)
    # matched as the job's projection matches: whatever the case of the approved names
    with county.tx() as s:
        _terms(s, pid, "residents").columns = ["TOWN_CODE", "Age", "lives_alone"]
    assert dummy_columns(dev, residents, project_id=pid) == APPROVED
    # the same grant unrestricted (positive control): every column
    with county.tx() as s:
        _terms(s, pid, "residents").columns = None
    assert dummy_columns(dev, residents, project_id=pid) == everything


def test_dummy_data_for_a_project_refuses_non_members_and_unbindable_datasets(county, project):
    pid, _a = project
    residents = dataset_id(county, "residents")
    steward = h.client(county, "steward")  # may read the catalog, but is no member of the project
    assert steward.get(f"/api/datasets/{residents}/dummy", params={"rows": 5}).status_code == 200
    r = steward.get(f"/api/datasets/{residents}/dummy", params={"rows": 5, "project_id": pid})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["details"]["reason"] == "project_member"
    assert len(denials(county, pid)) == 1  # audited like any refusal

    dev = h.client(county, "developer")
    farmland = dataset_id(county, "farmland_plots")  # not in the authorisation at all
    r = dev.get(f"/api/datasets/{farmland}/dummy", params={"rows": 5, "project_id": pid})
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["details"]["reason"] == "not_granted" and "farmland_plots" in err["message"]
    assert "not granted" in err["message"] or "未授予" in err["message"]
    en = dev.get(
        f"/api/datasets/{farmland}/dummy",
        params={"rows": 5, "project_id": pid},
        headers={"Accept-Language": "en"},
    ).json()["error"]["message"]
    zh = dev.get(
        f"/api/datasets/{farmland}/dummy",
        params={"rows": 5, "project_id": pid},
        headers={"Accept-Language": "zh-CN"},
    ).json()["error"]["message"]
    assert "farmland_plots" in en and "is not granted to the project" in en and "dummy data" in en
    assert "farmland_plots" in zh and "未授予本项目" in zh and "模拟数据" in zh

    with county.tx() as s:  # residents: DP queries only from now on
        _terms(s, pid, "residents").channels = ["dp_query"]
    r = dev.get(
        f"/api/datasets/{residents}/dummy",
        params={"rows": 5, "project_id": pid},
        headers={"Accept-Language": "en"},
    )
    assert r.status_code == 403 and r.json()["error"]["details"]["reason"] == "channel"
    assert "residents" in r.json()["error"]["message"] and "sandbox jobs" in r.json()["error"]["message"]
    assert len(denials(county, pid)) == 5  # every refusal above, each with its reason
    reasons = [json.loads(e.details).get("reason") for e in denials(county, pid)]
    assert reasons == ["project_member", "not_granted", "not_granted", "not_granted", "channel"]
    # without a project nothing changed: the developer still gets the whole schema
    assert "income" in dummy_columns(dev, residents)


@pytest.mark.usefixtures("bwrap")
def test_countylab_run_for_a_project_sees_only_the_approved_columns(county, project, tmp_path, capsys):
    """End to end: `countylab run --project <slug>` against a live lab; the job, in the local
    sandbox, reads /data/residents and prints its columns: only the three approved ones."""
    pid, _a = project
    with county.read() as s:
        slug = s.get(Project, pid).slug
    folder = job_folder(tmp_path, "residents")
    (folder / "main.py").write_text(
        "import pyarrow.dataset as ds\n"
        "names = sorted(ds.dataset('/data/residents', format='parquet').schema.names)\n"
        "print('COLUMNS=' + '|'.join(names))\n"
        "open('/outbox/out.csv', 'w').write('columns\\n' + '|'.join(names) + '\\n')\n"
    )
    stdout = folder / ".countylab" / "outbox" / "main" / "logs" / "stdout.txt"
    with serve(county) as url:
        token = token_for(county, h.uid(county, "developer"))
        runner = CliRunner()
        for chosen in (slug, str(pid)):  # the project by slug or by id
            result = runner.invoke(
                app, ["run", str(folder), "--project", chosen, "--url", url, "--token", token]
            )
            assert result.exit_code == 0, result.output
            assert "COLUMNS=age|lives_alone|town_code" in stdout.read_text(), stdout.read_text()
            assert "--project" not in result.output  # no hint: the project was given
        # without --project: unchanged (the whole schema), plus a one-line hint
        result = runner.invoke(app, ["run", str(folder), "--url", url, "--token", token])
        assert result.exit_code == 0, result.output
        printed = stdout.read_text()
        assert "income" in printed and "age" in printed
        hint = [line for line in result.output.splitlines() if "--project" in line]
        assert len(hint) == 1, result.output
        # an unknown slug: a usage error naming it, before any data is fetched
        result = runner.invoke(
            app, ["run", str(folder), "--project", "no-such", "--url", url, "--token", token]
        )
        assert result.exit_code == 2 and "no-such" in result.output
        # a dataset the project's jobs cannot read: the lab's refusal, and the job does not run
        with county.tx() as s:
            _terms(s, pid, "residents").channels = ["dp_query"]
        stdout.unlink()
        capsys.readouterr()
        code = main(["run", str(folder), "--project", slug, "--url", url, "--token", token])
    refusal = capsys.readouterr().err
    assert code == 1 and refusal.startswith("error:") and "residents" in refusal, refusal
    assert not stdout.exists()  # the job did not run
    assert (folder / ".countylab" / "dummy" / "residents" / "dummy.parquet").is_file()  # kept
    # --project fetches from the lab: with local dummy files it is a usage error
    code = main(["run", str(folder), "--project", slug, "--dummy-dir", str(tmp_path)])
    assert code == 2 and "--dummy-dir" in capsys.readouterr().err
