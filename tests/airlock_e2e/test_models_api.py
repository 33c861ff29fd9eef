"""Model registry and in-domain serving through the API: register from the outbox, approve,
predict (sandboxed worker), per-caller rate limit, and no route ever returns the weights."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import joblib
import pytest
from sklearn.linear_model import LinearRegression

from countylab.web.app import create_app, iter_api_routes
from tests.airlock_e2e.conftest import World, request_body
from tests.support import audit_actions

pytestmark = pytest.mark.needs("sandbox")  # skips with plain pytest; fails under make test


def _model_bytes() -> bytes:
    """A model that generalises (here: a line through age): it passes the memorisation tests."""
    buf = io.BytesIO()
    joblib.dump(LinearRegression().fit([[60], [70], [80]], [1.0, 2.0, 3.0]), buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def served(shared_world: World) -> dict[str, Any]:
    world = shared_world
    weights = _model_bytes()
    job = world.make_job({"model.joblib": weights, "metrics.json": b'{"r2": 0.91}'})
    dev = world.client("dev")
    # the metrics pass the airlock first (two checkers), the model itself never does
    req = dev.post("/api/airlock/requests", json=request_body(job, "metrics.json")).json()
    for who in ("checker", "checker2"):
        world.client(who).post(f"/api/airlock/requests/{req['id']}/votes", json={"choice": "approve"})
    metrics_id = req["files"][0]["id"]
    resp = dev.post(
        "/api/models",
        json={
            "job_id": job,
            "file": "analyse/model.joblib",
            "name": "需求预测",
            "inputs": ["age"],
            "outputs": ["demand:number:0..10:2"],
            "metrics_file_id": metrics_id,
        },
    )
    assert resp.status_code == 201, resp.text
    model = resp.json()
    assert model["state"] == "pending" and model["card"]["training_data"][0]["name"] == "residents"
    assert json.loads(model["card"]["metrics"]["content"]) == {"r2": 0.91}
    # the model file in a release request fails the file type check and cannot be previewed
    bad = dev.post("/api/airlock/requests", json=request_body(job, "model.joblib")).json()
    assert bad["state"] == "returned"
    return {"world": world, "model": model, "weights": weights, "job": job, "bad_request": bad}


def test_register_approve_predict_rate_limit(served: dict[str, Any]) -> None:
    world, model = served["world"], served["model"]
    dev = world.client("dev")
    mid = model["id"]
    assert dev.post(f"/api/models/{mid}/predict", json={"rows": [[65]]}).status_code == 409  # not approved
    # the developer cannot approve their own model, nor run the tests; the steward can
    assert dev.post(f"/api/models/{mid}/decision", json={"approve": True}).status_code == 403
    assert dev.post(f"/api/models/{mid}/assessment").status_code == 403
    steward = world.client("steward")
    untested = steward.post(f"/api/models/{mid}/decision", json={"approve": True})
    assert untested.status_code == 409 and untested.json()["error"]["details"]["reason"] == "assessment"
    report = steward.post(f"/api/models/{mid}/assessment")
    assert report.status_code == 200, report.text
    figures = report.json()["assessment"]
    assert figures["verdict"] == "warn" and figures["rows"] == 120, figures  # no target: warn
    assert figures["rare_value_rate"] == 0.0 and figures["pii_hits"] == 0
    no_note = steward.post(f"/api/models/{mid}/decision", json={"approve": True})
    assert no_note.status_code == 422  # a warning needs a written reason
    ok = steward.post(
        f"/api/models/{mid}/decision",
        json={"approve": True, "rate_per_minute": 3, "daily_quota": 50, "note": "线性模型，无目标列"},
    )
    assert ok.status_code == 200 and ok.json()["state"] == "approved", ok.text
    got = dev.post(f"/api/models/{mid}/predict", json={"rows": [[65], {"age": 75}]})
    assert got.status_code == 200, got.text
    preds = got.json()["predictions"]
    assert len(preds) == 2 and 1.0 < preds[1] < 3.5 and preds[1] == round(preds[1], 2)
    assert dev.post(f"/api/models/{mid}/predict", json={"rows": [[1, 2, 3]]}).status_code == 422
    for _ in range(2):  # a refused input did not count: calls 2 and 3 of 3 per minute
        assert dev.post(f"/api/models/{mid}/predict", json={"rows": [[70]]}).status_code == 200
    limited = dev.post(f"/api/models/{mid}/predict", json={"rows": [[70]]})
    assert limited.status_code == 429 and limited.json()["error"]["details"]["reason"] == "rate_limited"
    # a developer of another project may not call it
    assert world.client("dev2").post(f"/api/models/{mid}/predict", json={"rows": [[70]]}).status_code == 403
    assert ("model.predict", "dev", "ok") in audit_actions(world.lab)
    with world.lab.tx() as s:
        from countylab.audit.log import recent

        event = next(e for e in recent(s, limit=200) if e.action == "model.predict")
        # the audit log keeps digests of what went in and out, never the values
        assert len(event.details["inputs_sha256"]) == 64 and len(event.details["outputs_sha256"]) == 64
        assert "inputs" not in event.details and "outputs" not in event.details


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), path)


def test_no_get_route_returns_the_weights(served: dict[str, Any]) -> None:
    world, weights = served["world"], served["weights"]
    bad = served["bad_request"]
    values = {
        "model_id": str(served["model"]["id"]),
        "job_id": str(served["job"]),
        "request_id": str(bad["id"]),
        "file_id": str(bad["files"][0]["id"]),
    }
    routes = [
        r.path
        for r in iter_api_routes(create_app(world.lab))
        if "GET" in r.methods and re.match(r"^/(api/)?(models|airlock)", r.path)
    ]
    assert len(routes) >= 8, routes
    for who in ("dev", "steward", "checker"):
        client = world.client(who)
        for path in routes:
            for url in (_fill(path, values), _fill(path, values) + "?scope=all"):
                resp = client.get(url)
                assert weights not in resp.content, (who, url)
                assert weights[:64] not in resp.content, (who, url)
