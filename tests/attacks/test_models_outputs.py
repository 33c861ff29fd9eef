"""A hostile developer against model serving: memorising models, untyped or out-of-range outputs,
personal data in answers, audit copies of predictions, many accounts of one organisation.

Every model here is a real scikit-learn model file in a finished job's outbox, registered and
called through the HTTP API; predictions run in the real sandboxed worker.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.storage.airlock_models import RegisteredModel
from tests.airlock_e2e.conftest import RESIDENTS, World, build_world
from tests.support import PASSWORD, token_for

AGES = [[r[5]] for r in RESIDENTS]


def _dump(model: Any) -> bytes:
    buf = io.BytesIO()
    joblib.dump(model, buf)
    return buf.getvalue()


def _models() -> dict[str, bytes]:
    with warnings.catch_warnings():  # "more classes than half the samples": that is the point
        warnings.simplefilter("ignore")
        return {
            "mean": _dump(DummyRegressor().fit(AGES, [float(a[0]) for a in AGES])),
            "line": _dump(LinearRegression().fit([[60], [70], [80]], [1.0, 2.0, 3.0])),
            "one_nn_age": _dump(KNeighborsRegressor(n_neighbors=1).fit(AGES, [float(a[0]) for a in AGES])),
            "one_nn_phone": _dump(
                KNeighborsRegressor(n_neighbors=1).fit(AGES, [float(r[3]) for r in RESIDENTS])
            ),
            "names": _dump(KNeighborsClassifier(n_neighbors=1).fit(AGES, [r[2] for r in RESIDENTS])),
            "id_numbers": _dump(KNeighborsClassifier(n_neighbors=1).fit(AGES, [r[1] for r in RESIDENTS])),
            "two_outputs": _dump(
                LinearRegression().fit([[60], [70], [80]], [[1.0, 2.0], [2.0, 3.0], [3.0, 4.0]])
            ),
        }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("models-attacks"))
    with w.lab.tx() as s:  # a second developer of the same company
        firm = ids.get_user(s, w.users["dev"]).org_id
        w.users["dev_b"] = ids.create_user(
            s,
            SYSTEM,
            username="dev_b",
            password=PASSWORD,
            display_name="dev_b",
            roles=["developer"],
            org_id=firm,
        ).id
    from countylab.identity import projects as prj

    with w.lab.tx() as s:
        prj.add_member(s, SYSTEM, w.project_id, username="dev_b")
    w.values = {"job": w.make_job({f"{k}.joblib": v for k, v in _models().items()})}  # type: ignore[attr-defined]
    yield w
    w.lab.close()


def _register(world: World, kind: str, outputs: list[Any], target: str | None = None) -> Any:
    return world.client("dev").post(
        "/api/models",
        json={
            "job_id": world.values["job"],  # type: ignore[attr-defined]
            "file": f"analyse/{kind}.joblib",
            "name": kind,
            "inputs": ["age"],
            "outputs": outputs,
            "target": target,
        },
    )


def _force_approve(world: World, model_id: int) -> None:
    """What a careless or colluding checker could do: approve whatever the tests said."""
    with world.lab.tx() as s:
        m = s.get(RegisteredModel, model_id)
        assert m is not None
        m.card = {**m.card, "assessment": {"verdict": "pass"}}
        m.state = "approved"


# -- outputs must be typed -------------------------------------------------------------------
@pytest.mark.parametrize(
    "outputs",
    [
        ["prediction"],
        ["name:text"],
        ["name:string:any"],
        ["who:category:only"],  # one category is no category
        ["v:number:0..inf"],
        ["v:number:nan..1"],
        ["v:number:5..1"],
        ["v:number:0..1:12"],
        ["risk:category:13800001234|low"],  # a label that is personal data
        [f"risk:category:{RESIDENTS[7][1]}|low"],
        [{"name": "v", "type": "free"}],
        [{"name": "v", "type": "number", "lower": 0}],
        [],
        ["a:number:0..1", "a:number:0..2"],
    ],
)
def test_untyped_or_unsafe_outputs_are_refused_at_registration(world: World, outputs: list[Any]) -> None:
    resp = _register(world, "mean", outputs)
    assert resp.status_code == 422, resp.text


# -- memorisation tests before approval --------------------------------------------------------
def test_generalising_model_passes_the_tests_and_is_approved(world: World) -> None:
    model = _register(world, "mean", ["age_hat:number:0..120:2"], target="age").json()
    steward = world.client("steward")
    report = steward.post(f"/api/models/{model['id']}/assessment").json()["assessment"]
    assert report["verdict"] == "pass", report
    assert report["exact_recall_excess"] == 0.0 and report["mia_advantage"] < 0.15
    ok = steward.post(f"/api/models/{model['id']}/decision", json={"approve": True})
    assert ok.status_code == 200 and ok.json()["state"] == "approved"
    got = world.client("dev").post(f"/api/models/{model['id']}/predict", json={"rows": [[61]]})
    assert got.status_code == 200 and got.json()["predictions"] == [74.5]


def test_one_nearest_neighbour_model_fails_the_tests_and_cannot_be_approved(world: World) -> None:
    model = _register(world, "one_nn_age", ["age_hat:number:0..120:0"], target="age").json()
    steward = world.client("steward")
    report = steward.post(f"/api/models/{model['id']}/assessment").json()["assessment"]
    assert report["verdict"] == "fail", report
    assert report["exact_recall_excess"] > 0.5 and report["nn_copy_rate"] > 0.5
    refused = steward.post(f"/api/models/{model['id']}/decision", json={"approve": True, "note": "ok"})
    assert refused.status_code == 409 and refused.json()["error"]["details"]["reason"] == "assessment"


def test_model_answering_phone_numbers_fails_the_scan(world: World) -> None:
    model = _register(world, "one_nn_phone", ["v:number:0..99999999999:0"]).json()
    report = world.client("steward").post(f"/api/models/{model['id']}/assessment").json()["assessment"]
    assert report["verdict"] == "fail"  # the answers are mobiles: refused by the scan during the tests
    assert not any(r[3] in json.dumps(report) for r in RESIDENTS)


def test_model_answering_names_is_outside_its_card(world: World) -> None:
    model = _register(world, "names", ["risk:category:low|high"]).json()
    report = world.client("steward").post(f"/api/models/{model['id']}/assessment").json()["assessment"]
    assert report["verdict"] == "fail"
    assert not any(r[2] in json.dumps(report, ensure_ascii=False) for r in RESIDENTS)


def test_untestable_model_cannot_be_approved(world: World) -> None:
    resp = world.client("dev").post(
        "/api/models",
        json={
            "job_id": world.values["job"],  # type: ignore[attr-defined]
            "file": "analyse/mean.joblib",
            "name": "features",
            "inputs": ["age_band_code"],  # not a column of the training data
            "outputs": ["v:number:0..120"],
        },
    )
    steward = world.client("steward")
    report = steward.post(f"/api/models/{resp.json()['id']}/assessment").json()["assessment"]
    assert report["verdict"] == "not_assessable"
    refused = steward.post(f"/api/models/{resp.json()['id']}/decision", json={"approve": True, "note": "x"})
    assert refused.status_code == 409


# -- every response is typed and scanned, even for an approved model --------------------------
@pytest.mark.parametrize(
    ("kind", "outputs"),
    [
        ("names", ["risk:category:low|high"]),  # names are not in the declared set
        ("id_numbers", ["risk:category:low|high"]),
        ("one_nn_phone", ["v:number:0..99999999999:0"]),  # mobile numbers in range: the scan
        ("one_nn_phone", ["v:number:0..100:0"]),  # out of range
        ("line", ["v:number:0..0.5:2"]),  # out of range
    ],
)
def test_approved_model_answers_outside_its_card_are_refused_without_echo(
    world: World, kind: str, outputs: list[str]
) -> None:
    model = _register(world, kind, outputs).json()
    _force_approve(world, model["id"])
    resp = world.client("dev").post(f"/api/models/{model['id']}/predict", json={"rows": [[61], [75]]})
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["details"]["reason"] == "output_outside_card"
    body = resp.text
    for r in RESIDENTS:
        assert r[1] not in body and r[2] not in body and r[3] not in body


def test_several_outputs_are_each_typed(world: World) -> None:
    model = _register(world, "two_outputs", ["a:number:0..10:1", "b:number:0..10:1"]).json()
    _force_approve(world, model["id"])
    got = world.client("dev").post(f"/api/models/{model['id']}/predict", json={"rows": [[70]]})
    assert got.status_code == 200 and got.json()["predictions"] == [[2.0, 3.0]]
    narrow = _register(world, "two_outputs", ["a:number:0..10:1", "b:number:0..2.5:1"]).json()
    _force_approve(world, narrow["id"])
    assert (
        world.client("dev").post(f"/api/models/{narrow['id']}/predict", json={"rows": [[70]]}).status_code
        == 409
    )


# -- what the audit log keeps ------------------------------------------------------------------
def test_audit_keeps_digests_not_values(world: World) -> None:
    from countylab.serving.outputs import digest

    model = _register(world, "line", ["v:number:0..10:3"]).json()
    _force_approve(world, model["id"])
    got = world.client("dev").post(f"/api/models/{model['id']}/predict", json={"rows": [[63], [77]]})
    assert got.status_code == 200
    with world.lab.tx() as s:
        from countylab.audit.log import recent

        event = next(e for e in recent(s, limit=500) if e.action == "model.predict")
    assert set(event.details) >= {"inputs_sha256", "outputs_sha256"}
    assert "inputs" not in event.details and "outputs" not in event.details
    assert event.details["inputs_sha256"] == digest([[63], [77]])
    assert event.details["outputs_sha256"] == digest(got.json()["predictions"])


# -- limits per organisation -------------------------------------------------------------------
def test_many_accounts_of_one_organisation_share_a_quota(world: World) -> None:
    model = _register(world, "line", ["v:number:0..10:3"]).json()
    _force_approve(world, model["id"])
    world.lab.models.org_daily_quota = 4  # type: ignore[attr-defined]
    try:
        a, b = world.client("dev"), _client(world, "dev_b")
        for c in (a, b, a, b):
            assert c.post(f"/api/models/{model['id']}/predict", json={"rows": [[70]]}).status_code == 200
        over = b.post(f"/api/models/{model['id']}/predict", json={"rows": [[70]]})
        assert over.status_code == 429 and over.json()["error"]["details"]["reason"] == "org_daily_quota"
    finally:
        world.lab.models.org_daily_quota = 3000  # type: ignore[attr-defined]


def _client(world: World, who: str) -> Any:
    from fastapi.testclient import TestClient

    from countylab.web.app import create_app

    c = TestClient(create_app(world.lab), raise_server_exceptions=False)
    c.headers["Authorization"] = f"Bearer {token_for(world.lab, world.users[who])}"
    return c


def test_too_many_rows_per_call_are_refused(world: World) -> None:
    model = _register(world, "line", ["v:number:0..10:3"]).json()
    _force_approve(world, model["id"])
    resp = world.client("dev").post(f"/api/models/{model['id']}/predict", json={"rows": [[70]] * 1001})
    assert resp.status_code == 422


def test_no_route_or_page_shows_training_rows(world: World, tmp_path: Path) -> None:
    model = _register(world, "one_nn_age", ["age_hat:number:0..120:0"], target="age").json()
    steward = world.client("steward")
    steward.post(f"/api/models/{model['id']}/assessment")
    page = steward.get(f"/models/{model['id']}")
    api = steward.get(f"/api/models/{model['id']}")
    for text in (page.text, api.text):
        for r in RESIDENTS:
            assert r[1] not in text and r[2] not in text


# -- registration is no oracle on the outbox ---------------------------------------------------
def test_only_declared_model_outputs_can_be_registered_and_missing_looks_like_not_a_model(
    world: World,
) -> None:
    from countylab.storage.jobs_models import Job

    job_id = world.make_job({"model.joblib": _models()["line"], "bit7.joblib": _models()["line"]})
    with world.lab.tx() as s:  # the spec declares model.joblib and a model the job never wrote
        job = s.get(Job, job_id)
        assert job is not None
        spec = dict(job.spec)
        action = next(iter(spec["actions"]))
        outputs = [o for o in spec["actions"][action]["outputs"] if not o["path"].startswith("bit")]
        outputs.append({"path": "absent.joblib", "kind": "model"})
        spec["actions"] = {action: {**spec["actions"][action], "outputs": outputs}}
        job.spec = spec
    dev = world.client("dev")

    def register(path: str) -> Any:
        body = {"job_id": job_id, "file": path, "name": "m", "inputs": ["age"], "outputs": ["v:number:0..9"]}
        return dev.post("/api/models", json=body)

    # written by the job but not declared: refused before the outbox is looked at
    undeclared = register(f"{action}/bit7.joblib")
    never = register(f"{action}/bit8.joblib")
    assert undeclared.status_code == never.status_code == 422
    assert undeclared.json()["error"] == never.json()["error"]
    # declared but missing: the same answer as any file that is not a model
    missing = register(f"{action}/absent.joblib")
    assert missing.status_code == 409 and missing.json()["error"]["details"]["reason"] == "no_model_file"
    assert register(f"{action}/model.joblib").status_code == 201


def test_project_members_never_see_the_model_files_size_or_hash(world: World) -> None:
    model = _register(world, "line", ["v:number:0..10:3"]).json()
    assert model["bytes"] is None and model["sha256"] is None
    size = re.compile(rf"(?<![\d.]){len(_models()['line'])}(?![\d.])")  # not inside a time or another number
    for path in (f"/api/models/{model['id']}", "/api/models"):
        text = world.client("dev").get(path).text
        assert not size.search(text), size.search(text)
    seen = world.client("steward").get(f"/api/models/{model['id']}").json()
    assert seen["bytes"] == len(_models()["line"]) and len(seen["sha256"]) == 64
    page = world.client("dev").get(f"/models/{model['id']}").text
    assert seen["sha256"] not in page
