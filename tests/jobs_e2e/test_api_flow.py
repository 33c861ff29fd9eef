"""The compute center through its HTTP API, on the demo lab's real data, in the real sandbox.

One lab per module (a copy of the demo lab) with the dispatcher running.  The developer submits
the sample project as a tar.gz; it runs on the granted datasets; outputs land in the outbox;
the developer sees the fixed facts (state, the limit that stopped a job, the lab's message) —
never the outbox's files, logs, exit codes or exact metering; stewards outside the project do.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from countylab.lab import Lab
from countylab.storage.jobs_models import Job
from countylab.storage.models import Dataset
from countylab_client._jobs import pack_folder
from tests.jobs_e2e.e2e_helpers import (
    EXAMPLE,
    center,
    demo_lab_from,
    job_folder,
    project_id,
    user_id,
    wait_state,
)
from tests.support import api_client, audit_actions

pytestmark = pytest.mark.usefixtures("bwrap")


@pytest.fixture(scope="module")
def lab(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = demo_lab_from(demo_template, tmp_path_factory.mktemp("api"))
    center(lab).start()
    yield lab
    lab.close()


@pytest.fixture(scope="module")
def dev(lab: Lab) -> TestClient:
    return api_client(lab, user_id(lab, "developer"))


@pytest.fixture(scope="module")
def pid(lab: Lab) -> int:
    return project_id(lab, "elderly-care-demand")


def submit_folder(client: TestClient, pid: int, folder: Path, **data: str):
    return client.post(
        f"/api/projects/{pid}/jobs", files={"file": ("code.tar.gz", pack_folder(folder))}, data=data
    )


def test_sample_project_runs_on_real_data_and_outputs_stay_in_the_outbox(lab, dev, pid):
    resp = submit_folder(dev, pid, EXAMPLE, name="养老模型")
    assert resp.status_code == 201, resp.text
    job = resp.json()
    assert job["state"] == "queued" and job["name"] == "养老模型"
    assert wait_state(lab, job["id"], {"succeeded", "failed", "killed"}, 90) == "succeeded", dev.get(
        f"/api/jobs/{job['id']}"
    ).json()
    mine = dev.get(f"/api/jobs/{job['id']}").json()
    assert mine["stopped_by"] is None and not mine["details"]
    assert not {"exit_code", "usage", "attempt_list", "error"} & set(mine), mine  # outputs, not facts
    steward = api_client(lab, user_id(lab, "steward"))  # oversight outside the project sees the record
    detail = steward.get(f"/api/jobs/{job['id']}").json()
    assert detail["exit_code"] == 0 and detail["usage"]["cpu_s"] > 0 and detail["usage"]["max_rss_mb"] > 50
    [attempt] = detail["attempt_list"]
    assert attempt["actions"][0]["name"] == "train" and attempt["actions"][0]["state"] == "succeeded"

    files = lab.jobs.outbox_files(job["id"])
    names = {p.relative_to(files[0].parents[1]).as_posix() for p in files}
    assert {
        "train/metrics.json",
        "train/metrics_table.csv",
        "train/feature_importance.svg",
        "train/model.joblib",
        "train/logs/stdout.txt",
        "train/logs/stderr.txt",
    } <= names, names
    root = lab.settings.data_dir / "jobs" / "outbox" / str(pid) / str(job["id"]) / "attempt-1" / "train"
    assert all(p.is_relative_to(root) for p in files)
    cells = list(csv.DictReader(io.StringIO((root / "metrics_table.csv").read_text())))
    assert cells and all(int(c["residents"]) >= 10 for c in cells)
    assert "<svg" in (root / "feature_importance.svg").read_text()

    mine = dev.get(f"/api/jobs/{job['id']}/logs").json()
    assert mine["streams"] == [] and "countylab run" in mine["message"]["en"]  # logs are outputs
    logs = steward.get(f"/api/jobs/{job['id']}/logs").json()
    stdout = next(s for s in logs["streams"] if s["stream"] == "stdout")
    assert any("test MAE" in line for line in stdout["lines"]) and stdout["withheld"] == 0
    # no route hands out outbox files: they leave only through the airlock
    assert dev.get(f"/api/jobs/{job['id']}/outbox").status_code == 404
    # the developer sees the outputs the spec declares (their own words), never what the job wrote:
    # the undeclared log and sidecar files in the outbox are not named
    seen = dev.get(f"/api/jobs/{job['id']}").json()
    assert {o["selector"] for o in seen["outputs"]} == {
        f"train/{o['path']}" for o in spec_outputs(lab, job["id"])
    }
    assert "stdout.txt" not in str(seen) and ".countylab.json" not in str(seen)
    assert seen["cpu_coarse"] is True and seen["cpu_s"] in (0, 60, 600, 3600)

    actions = [a for a, _who, _o in audit_actions(lab)]
    assert {"job.submit", "job.queue", "job.start", "job.finish"} <= set(actions)


LEAKY = """\
import pyarrow.parquet as pq, glob
row = pq.read_table(glob.glob('/data/residents/*.parquet')[0]).slice(0, 1).to_pylist()[0]
print('starting the analysis')
print('id', row['id_number'])
print(f"resident {row['name']} done")
print('phone ' + row['mobile'])
print('finished: 3 tables written')
"""


def test_logs_are_outputs_developers_never_see_them_stewards_see_a_scanned_tail(lab, dev, pid, tmp_path):
    folder = job_folder(tmp_path, "leaky", LEAKY, datasets="[residents]")
    resp = submit_folder(dev, pid, folder)
    assert resp.status_code == 201, resp.text
    job = resp.json()
    assert wait_state(lab, job["id"], {"succeeded", "failed"}) == "succeeded"
    mine = dev.get(f"/api/jobs/{job['id']}/logs")
    assert mine.json()["streams"] == []
    body = api_client(lab, user_id(lab, "steward")).get(f"/api/jobs/{job['id']}/logs")
    stdout = next(s for s in body.json()["streams"] if s["stream"] == "stdout")
    assert (
        stdout["lines"][0] == "starting the analysis" and stdout["lines"][-1] == "finished: 3 tables written"
    )
    assert stdout["withheld"] == 3 and sum("withheld" in line for line in stdout["lines"]) == 3
    raw = (lab.jobs.outbox_files(job["id"])[0].parents[1] / "main" / "logs" / "stdout.txt").read_text()
    secrets = [line.split()[1] for line in raw.splitlines()[1:4]]  # ID number, name, mobile
    assert len(secrets[0]) == 18 and len(secrets[2]) == 11
    page = dev.get(f"/jobs/{job['id']}")  # token auth also works for pages
    assert "starting the analysis" not in page.text and "starting the analysis" not in mine.text
    for secret in secrets:  # the full log in the outbox holds them; what anyone sees here does not
        assert secret not in body.text and secret not in page.text and secret not in mine.text


def test_bad_specs_are_refused_with_line_and_reason(dev, pid):
    spec = (
        "version: 1\nactions:\n  main:\n    run: python main.py\n    datasets: [residents, secret_table]\n"
        "    outputs: [{path: a.csv, kind: table}]\n"
    )
    resp = dev.post(
        f"/api/projects/{pid}/jobs", json={"files": {"countylab.yaml": spec, "main.py": "pass\n"}}
    )
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["details"]["line"] == 5 and err["details"]["reason"] == "unknown_dataset", err
    assert "第 5 行" in err["message"]
    spec = (
        "version: 1\nactions:\n  main:\n    run: python main.py\n    outputs: [{path: a.csv, kind: table}]\n"
        "    resources: {cpu: 1, memroy_mb: 10}\n"
    )
    err = dev.post(
        f"/api/projects/{pid}/jobs", json={"files": {"countylab.yaml": spec, "main.py": ""}}
    ).json()
    assert err["error"]["details"]["line"] == 6, err
    resp = dev.post(f"/api/projects/{pid}/jobs", json={"files": {"main.py": "print(1)\n"}})
    assert resp.status_code == 422 and resp.json()["error"]["details"]["reason"] == "missing_spec"
    resp = dev.post(f"/api/projects/{pid}/jobs", files={"file": ("x.csv", b"a,b\n1,2\n")})
    assert resp.status_code == 422


def test_permissions_and_quota(lab, dev, pid, tmp_path):
    folder = job_folder(tmp_path, "ok", "print('ok')\n")
    researcher = api_client(lab, user_id(lab, "researcher"))  # a developer, not a member
    steward = api_client(lab, user_id(lab, "steward"))
    checker = api_client(lab, user_id(lab, "checker"))
    assert submit_folder(researcher, pid, folder).status_code == 403
    assert submit_folder(steward, pid, folder).status_code == 403  # oversight reads, never runs code
    assert ("permission.denied", "researcher", "denied") in audit_actions(lab)
    job = submit_folder(dev, pid, folder).json()
    assert researcher.get(f"/api/jobs/{job['id']}").status_code == 403
    assert researcher.get(f"/api/jobs/{job['id']}/logs").status_code == 403
    assert checker.get(f"/api/jobs/{job['id']}").status_code == 200  # oversight may look
    assert checker.post(f"/api/jobs/{job['id']}/cancel").status_code == 403
    assert all(j["project_id"] != pid for j in researcher.get("/api/jobs").json()["items"])
    assert job["id"] in {j["id"] for j in dev.get("/api/jobs").json()["items"]}

    quota = {
        "max_cpu": 2,
        "max_memory_mb": 2048,
        "max_time_s": 600,
        "cpu_seconds": 36000,
        "concurrent_jobs": 2,
    }
    assert dev.put(f"/api/projects/{pid}/quota", json=quota).status_code == 403
    resp = steward.put(f"/api/projects/{pid}/quota", json=quota)
    assert resp.status_code == 200 and resp.json()["quota"]["max_memory_mb"] == 2048
    usage = dev.get(f"/api/projects/{pid}/usage").json()
    assert usage["quota"]["cpu_seconds"] == 36000 and usage["usage"]["attempts"] >= 1
    big = job_folder(tmp_path, "big", "pass\n", resources="{cpu: 1, memory_mb: 4096, time_s: 20}")
    resp = submit_folder(dev, pid, big)
    assert resp.status_code == 422 and resp.json()["error"]["details"]["reason"] == "quota"


def test_cancel_retry_and_the_approved_code_hold(lab, dev, pid, tmp_path):
    failing = job_folder(tmp_path, "failing", "import sys\nprint('bad input')\nsys.exit(3)\n")
    job = submit_folder(dev, pid, failing).json()
    assert wait_state(lab, job["id"], {"failed", "succeeded"}) == "failed"
    mine = dev.get(f"/api/jobs/{job['id']}").json()
    assert mine["stopped_by"] == "exited_with_error" and "exit_code" not in mine
    assert "3" not in str(mine["message"])
    steward = api_client(lab, user_id(lab, "steward"))
    assert steward.get(f"/api/jobs/{job['id']}").json()["exit_code"] == 3
    assert dev.post(f"/api/jobs/{job['id']}/retry").json()["state"] in ("queued", "running", "failed")
    assert wait_state(lab, job["id"], {"failed"}) == "failed"
    detail = steward.get(f"/api/jobs/{job['id']}").json()
    assert detail["attempts"] == 2 and [a["number"] for a in detail["attempt_list"]] == [1, 2]

    held = submit_folder(dev, pid, failing, hold="1").json()
    assert held["state"] == "pending"
    assert dev.post(f"/api/jobs/{held['id']}/cancel").json()["state"] == "cancelled"
    again = dev.post(f"/api/jobs/{held['id']}/cancel")  # idempotent: nothing changes, nothing to audit
    assert again.status_code == 200 and again.headers["X-Countylab-Outcome"] == "unchanged"

    with lab.tx() as s:  # villages becomes 重要数据: only code a steward approved may read it
        s.execute(update(Dataset).where(Dataset.name == "villages").values(grade="important"))
    reader = job_folder(
        tmp_path, "reader", "import os\nprint(sorted(os.listdir('/data/villages')))\n", datasets="[villages]"
    )
    job = submit_folder(dev, pid, reader).json()
    assert job["state"] == "pending"
    assert dev.post(f"/api/jobs/{job['id']}/admit").status_code == 403
    assert steward.post(f"/api/jobs/{job['id']}/admit").json()["state"] in ("queued", "running", "succeeded")
    assert wait_state(lab, job["id"], {"succeeded", "failed"}) == "succeeded"
    logs = steward.get(f"/api/jobs/{job['id']}/logs").json()["streams"][0]["lines"]
    assert logs == ["['part-00000.parquet']"]


def test_cancelling_a_running_job_kills_it_at_once(lab, dev, pid, tmp_path):
    import time

    sleeper = job_folder(tmp_path, "sleeper", "import time\nprint('started', flush=True)\ntime.sleep(600)\n")
    job = submit_folder(dev, pid, sleeper).json()
    assert wait_state(lab, job["id"], {"running"}) == "running"
    time.sleep(0.5)
    started = time.monotonic()
    assert dev.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    assert wait_state(lab, job["id"], {"cancelled"}) == "cancelled"
    assert time.monotonic() - started < 10  # not the action's time limit


def spec_outputs(lab: Lab, job_id: int) -> list[dict[str, str]]:
    with lab.read() as s:
        stored = s.get(Job, job_id)
        assert stored is not None
        return list(stored.spec["actions"]["train"]["outputs"])
