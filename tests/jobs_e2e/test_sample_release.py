"""The sample project from job to released files through the web forms alone: the developer
uploads the folder, selects ``*`` (what countylab.yaml declares) on the request form, sees a
count, two checkers approve on the review page, and the developer downloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from countylab_client._jobs import pack_folder
from tests.jobs_e2e.e2e_helpers import EXAMPLE, center, demo_lab_from, project_id, user_id, wait_state
from tests.support import api_client

pytestmark = pytest.mark.usefixtures("bwrap")


def test_the_sample_is_submitted_and_released_from_the_web_forms(demo_template: Path, tmp_path: Path) -> None:
    lab = demo_lab_from(demo_template, tmp_path)
    center(lab).start()
    try:
        dev = api_client(lab, user_id(lab, "developer"))
        pid = project_id(lab, "elderly-care-demand")
        upload = {"file": ("model.tar.gz", pack_folder(EXAMPLE))}
        sent = dev.post(f"/projects/{pid}/jobs", files=upload, data={"name": "养老"}, follow_redirects=False)
        assert sent.status_code == 303, sent.text
        job_id = int(sent.headers["location"].rsplit("/", 1)[1])
        assert wait_state(lab, job_id, {"succeeded", "failed", "killed"}, 120) == "succeeded"

        form = dev.get(f"/airlock/new?job_id={job_id}").text
        assert 'data-selector="*"' in form and "model.joblib" not in form.split('data-selector="*"')[1][:300]
        made = dev.post(
            "/airlock/requests",
            data={
                "job_id": str(job_id),
                "title": "养老需求",
                "files_all": ["*"],
                "files": ["*"],
                "submit_now": "1",
            },
            follow_redirects=False,
        )
        assert made.status_code == 303 and "/airlock/requests/" in made.headers["location"], made.text
        rid = int(made.headers["location"].rsplit("/", 1)[1])
        mine = dev.get(f"/api/airlock/requests/{rid}").json()
        assert mine["state"] == "under_review", (mine["state"], mine["failed_rules"])
        assert mine["files_count"] >= 3 and {f["name"] for f in mine["files"]} == {None}

        for who in ("checker", "checker2"):
            checker = api_client(lab, user_id(lab, who))
            assert checker.get(f"/airlock/requests/{rid}").status_code == 200
            voted = checker.post(
                f"/airlock/requests/{rid}/votes", data={"choice": "approve"}, follow_redirects=False
            )
            assert voted.status_code == 303
        done = dev.get(f"/api/airlock/requests/{rid}").json()
        assert done["state"] == "released", done["state"]
        names = {f["name"] for f in done["files"]}
        assert "train/metrics_table.csv" in names and not any(n.endswith(".joblib") for n in names)
        got = dev.get(f"/airlock/files/{done['files'][0]['id']}/download")
        assert got.status_code == 200 and got.content
    finally:
        lab.close()
