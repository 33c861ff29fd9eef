"""``countylab run`` on dummy data (sandboxed, paths as on the server) and ``countylab job …``
against a live lab (uvicorn in a thread) with its dispatcher running."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from countylab.cli import app, main
from countylab.jobs.local import run_local, stage_from_dir
from countylab.lab import Lab
from tests.jobs_e2e.e2e_helpers import (
    EXAMPLE,
    center,
    demo_lab_from,
    job_folder,
    project_id,
    serve,
    user_id,
    write_dummy,
)
from tests.support import token_for

pytestmark = pytest.mark.usefixtures("bwrap")
NAMES = ["residents", "elderly_care_records"]


@pytest.fixture(scope="module")
def lab(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = demo_lab_from(demo_template, tmp_path_factory.mktemp("cli"))
    center(lab).start()
    yield lab
    lab.close()


@pytest.fixture(scope="module")
def live(lab: Lab) -> Iterator[tuple[str, str]]:
    with serve(lab) as url:
        yield url, token_for(lab, user_id(lab, "developer"))


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result


def test_run_sample_project_on_dummy_dir_in_the_sandbox(lab, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(EXAMPLE, folder)
    dummy = write_dummy(lab, NAMES, tmp_path / "dummy")
    result = invoke("run", str(folder), "--dummy-dir", str(dummy))
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "warning" not in result.output
    outbox = folder / ".countylab" / "outbox" / "train"
    for name in (
        "metrics.json",
        "metrics_table.csv",
        "feature_importance.svg",
        "model.joblib",
        "logs/stdout.txt",
    ):
        assert (outbox / name).is_file(), name
    assert json.loads((outbox / "metrics.json").read_text())["n_train"] > 0
    assert (folder / ".countylab" / "dummy" / "residents" / "residents.parquet").is_file()
    again = invoke("run", str(folder))  # reuses the staged dummy data
    assert again.exit_code == 0, again.output


PATHS = (
    "import os\nfor d in sorted(os.listdir('/data')):\n    print(d, sorted(os.listdir('/data/' + d)))\n"
    "print(os.getcwd(), os.environ['COUNTYLAB_OUTBOX'])\n"
)


def test_local_paths_are_the_server_paths(lab, tmp_path):
    folder = job_folder(tmp_path, "paths", PATHS, datasets="[residents]")
    local = invoke("run", str(folder), "--dummy-dir", str(write_dummy(lab, ["residents"], tmp_path / "d")))
    assert local.exit_code == 0, local.output
    here = (folder / ".countylab" / "outbox" / "main" / "logs" / "stdout.txt").read_text()
    assert here.splitlines() == ["residents ['residents.parquet']", "/work /outbox"]
    with lab.tx() as s:
        job = center(lab).service.submit(s, _dev(lab), project_id(lab, "elderly-care-demand"), folder)
        job_id = job.id
    from tests.jobs_e2e.e2e_helpers import wait_state

    assert wait_state(lab, job_id, {"succeeded", "failed"}) == "succeeded"
    there = next(p for p in lab.jobs.outbox_files(job_id) if p.name == "stdout.txt").read_text()
    assert there.splitlines() == [
        "residents ['part-00000.parquet']",
        "/work /outbox",
    ]  # same paths, real data


def _dev(lab: Lab):
    from tests.jobs_e2e.e2e_helpers import principal

    return principal(lab, "developer")


def test_unsandboxed_fallback_is_for_dummy_data_and_keeps_paths_working(lab, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(EXAMPLE, folder)
    staged = stage_from_dir(write_dummy(lab, NAMES, tmp_path / "dummy"), folder, NAMES)
    result = run_local(folder, staged, sandboxed=False)
    assert not result.sandboxed and result.outcome.state.value == "succeeded", result.outcome
    assert (result.outbox / "train" / "model.joblib").is_file()


def test_run_fetches_dummy_data_from_the_lab_then_submit_status_logs(lab, live, tmp_path):
    url, token = live
    folder = tmp_path / "model"
    shutil.copytree(EXAMPLE, folder)
    result = invoke("run", str(folder), "--url", url, "--token", token, "--rows", "300")
    assert result.exit_code == 0, result.output
    assert (folder / ".countylab" / "dummy" / "elderly_care_records" / "dummy.parquet").is_file()

    pid = str(project_id(lab, "elderly-care-demand"))
    result = invoke(
        "job", "submit", str(folder), "--project", pid, "--wait", "--json", "--url", url, "--token", token
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)  # --json: the machine form, nothing else on stdout
    job_id = str(view["id"])
    assert view["state"] == "succeeded" and view["name"] == "model: train.py"
    status = invoke("job", "status", job_id, "--json", "--url", url, "--token", token)
    assert status.exit_code == 0 and '"state": "succeeded"' in status.output
    assert '"exit_code"' not in status.output
    readable = invoke("job", "status", job_id, "--url", url, "--token", token)
    assert readable.exit_code == 0 and "model: train.py" in readable.output and "{" not in readable.output
    listed = invoke("job", "list", "--project", pid, "--url", url, "--token", token)
    assert listed.exit_code == 0 and job_id in listed.output
    logs = invoke("job", "logs", job_id, "--url", url, "--token", token)
    assert logs.exit_code == 0 and "countylab run" in logs.output and "test MAE" not in logs.output
    retry = invoke("job", "retry", job_id, "--url", url, "--token", token)  # succeeded: not retryable
    assert retry.exit_code != 0


def test_submit_refuses_bad_specs_with_the_line(lab, live, tmp_path, capsys):
    url, token = live
    folder = job_folder(tmp_path, "bad", "print(1)\n", datasets="[residents, farmland_plots]")
    code = main(
        [
            "job",
            "submit",
            str(folder),
            "--project",
            str(project_id(lab, "elderly-care-demand")),
            "--url",
            url,
            "--token",
            token,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error:"), err
    assert ("第 5 行" in err or "line 5" in err) and "farmland_plots" in err, err
