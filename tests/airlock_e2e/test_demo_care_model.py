"""The demo's elderly-care model by named fields, end to end on the demo lab's real data.

The example job (``examples/elderly-care-model``) trains in the real sandbox; the developer
registers ``train/model.joblib`` with the residents register's columns; the input schema comes
from the catalog (``town`` from the public towns key set, with names; age and income ranges from
the steward's bounds); the steward runs the memorisation tests and approves; the developer asks
``{"town": "<a town's name>", "age": 82, ...}`` and the real sandboxed worker answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from countylab.bootstrap import setup_demo
from countylab.lab import Lab
from countylab_client._jobs import pack_folder
from tests.jobs_e2e.e2e_helpers import EXAMPLE, center, project_id, user_id, wait_state
from tests.support import api_client, build_lab

pytestmark = [pytest.mark.needs("sandbox"), pytest.mark.slow]

INPUTS = ["age", "lives_alone", "gender", "income", "town_code"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = build_lab(tmp_path_factory.mktemp("care-model"))
    setup_demo(lab, size="tiny", steps=False)
    center(lab).start()
    yield lab
    lab.close()


def test_demo_model_is_called_by_named_fields(lab: Lab, tmp_path: Path) -> None:
    dev = api_client(lab, user_id(lab, "developer"))
    pid = project_id(lab, "elderly-care-demand")
    sent = dev.post(f"/api/projects/{pid}/jobs", files={"file": ("code.tar.gz", pack_folder(EXAMPLE))})
    assert sent.status_code == 201, sent.text
    job = sent.json()["id"]
    assert wait_state(lab, job, {"succeeded", "failed", "killed"}, 180) == "succeeded"
    reg = dev.post(
        "/api/models",
        json={
            "job_id": job,
            "file": "train/model.joblib",
            "name": "养老服务需求",
            "inputs": INPUTS,
            "outputs": ["visits:number:0..200:2"],
        },
    )
    assert reg.status_code == 201, reg.text
    model = reg.json()
    fields = {f["name"]: f for f in model["card"]["input_schema"]["fields"]}
    assert list(fields) == ["age", "lives_alone", "gender", "income", "town"]
    town = fields["town"]
    assert town["column"] == "town_code" and town["source"].startswith("key_set:")
    names = [c["label"] for c in town["categories"]]
    assert names and all(n and not n.isdigit() for n in names), names  # words, not codes
    assert (fields["age"]["lower"], fields["age"]["upper"]) == (0, 110)  # the steward's bounds
    assert fields["lives_alone"]["type"] == "boolean"

    steward = api_client(lab, user_id(lab, "steward"))
    report = steward.post(f"/api/models/{model['id']}/assessment")
    assert report.status_code == 200, report.text
    verdict = report.json()["assessment"]["verdict"]
    assert verdict in ("pass", "warn"), report.json()
    decided = steward.post(
        f"/api/models/{model['id']}/decision", json={"approve": True, "note": "演示模型，无目标列"}
    )
    assert decided.status_code == 200 and decided.json()["state"] == "approved", decided.text

    gender = fields["gender"]
    sex: Any = gender["categories"][0]["code"] if gender["categories"] else _a_gender(lab)
    record = {"town": names[0], "age": 82, "lives_alone": True, "gender": sex, "income": 12000}
    got = dev.post(f"/api/models/{model['id']}/predict", json={"rows": [record, {**record, "age": 65}]})
    assert got.status_code == 200, got.text
    assert len(got.json()["predictions"]) == 2 and all(0 <= p <= 200 for p in got.json()["predictions"])
    wrong = dev.post(f"/api/models/{model['id']}/predict", json={"rows": [{**record, "town": "不存在镇"}]})
    assert wrong.status_code == 422 and names[0] in wrong.text  # names the allowed towns


def _a_gender(lab: Lab) -> str:
    """A gender value the residents register uses (its column has no public key set)."""
    import duckdb

    from countylab.catalog import service as catalog

    with lab.read() as s:
        ds = catalog.get_by_name(s, "residents")
        paths = [str(p) for p in lab.read_paths(ds)] if hasattr(lab, "read_paths") else []
    if paths:
        row = duckdb.sql(f"SELECT gender FROM read_parquet({paths!r}) LIMIT 1").fetchone()
        assert row is not None
        return str(row[0])
    return "男"
