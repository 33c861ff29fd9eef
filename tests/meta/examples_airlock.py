"""Meta-test examples for the airlock and model registry routes (see test_every_route_checks_and_audits).

setup() gives the World a checker, a finished job of the world's project whose outbox holds a
safe table, a table with a malformed row and a small model, and an approved model; fill()
makes a fresh release request in the state each route needs, for each actor."""

from __future__ import annotations

import io
from typing import Any

import joblib
from sklearn.dummy import DummyRegressor

from countylab.airlock.service import FileChoice
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.serving.registry import ModelCard
from tests.meta.example import Example
from tests.support import PASSWORD, finished_job

TABLE = b"age_band,residents\n60-69,40\n70+,50\n"
BROKEN = b"age_band,residents\n60-69,40,extra\n"


def _model() -> bytes:
    buf = io.BytesIO()
    joblib.dump(DummyRegressor().fit([[1], [2]], [1.0, 2.0]), buf)
    return buf.getvalue()


CARD = ModelCard.parse(["x"], ["y:number:0..10"])

FILE = {
    "name": "a/table.csv",
    "description": "年龄段人数",
    "controls": "无小单元格",
    "count_columns": ["residents"],
}

EXAMPLES: dict[tuple[str, str], Example] = {
    ("POST", "/api/airlock/requests"): Example(
        "dev", {"job_id": "{job_id}", "files": [FILE], "submit": True}
    ),
    ("POST", "/api/airlock/requests/{request_id}/submit"): Example("dev"),
    ("POST", "/api/airlock/requests/{request_id}/resubmit"): Example("dev", {}),
    ("POST", "/api/airlock/requests/{request_id}/withdraw"): Example("dev"),
    ("POST", "/api/airlock/requests/{request_id}/votes"): Example("checker", {"choice": "approve"}),
    ("POST", "/api/airlock/requests/{request_id}/comments"): Example("dev", {"body": "请看第二行"}),
    ("POST", "/api/models"): Example(
        "dev",
        {
            "job_id": "{job_id}",
            "file": "a/model.joblib",
            "name": "m",
            "inputs": ["x"],
            "outputs": ["y:number:0..10"],
        },
    ),
    ("POST", "/api/models/{model_id}/assessment"): Example("steward"),
    ("POST", "/api/models/{model_id}/decision"): Example("steward", {"approve": True}),
    ("POST", "/api/models/{model_id}/predict"): Example("dev", {"rows": [[1]]}),
    ("POST", "/airlock/requests"): Example(
        "dev",
        {
            "job_id": "{job_id}",
            "files": "a/table.csv",
            "files_all": "a/table.csv",
            "title": "表",
            "submit_now": "1",
        },
    ),
    ("POST", "/airlock/requests/{request_id}/submit"): Example("dev"),
    ("POST", "/airlock/requests/{request_id}/resubmit"): Example("dev"),
    ("POST", "/airlock/requests/{request_id}/withdraw"): Example("dev"),
    ("POST", "/airlock/requests/{request_id}/votes"): Example("checker", {"choice": "approve"}),
    ("POST", "/airlock/requests/{request_id}/comments"): Example("dev", {"body": "请看第二行"}),
    ("POST", "/models"): Example(
        "dev",
        {
            "job_id": "{job_id}",
            "file": "a/model.joblib",
            "name": "m",
            "inputs": "x",
            "outputs": "y:number:0..10",
        },
    ),
    ("POST", "/models/{model_id}/assessment"): Example("steward"),
    ("POST", "/models/{model_id}/decision"): Example("steward", {"approve": "1"}),
    ("POST", "/models/{model_id}/predict"): Example("dev", {"rows": "[[1]]"}),
}


def setup(world: Any) -> None:
    lab = world.lab
    with lab.tx() as s:
        world.users["checker"] = ids.create_user(
            s, SYSTEM, username="checker", password=PASSWORD, display_name="checker", roles=["checker"]
        ).id
        job_id = finished_job(
            s,
            lab,
            project_id=world.project_id,
            submitted_by=world.users["dev"],
            datasets=["d1"],
            action="a",
            files={"table.csv": TABLE, "broken.csv": BROKEN, "model.joblib": _model()},
        )
        world.values["job_id"] = str(job_id)
    with lab.tx() as s:
        model = lab.models.register(s, SYSTEM, job_id, "a/model.joblib", "served", CARD)
        model.card = {**model.card, "assessment": {"verdict": "pass"}}  # tests ran (see test_models_api)
        lab.models.decide(s, SYSTEM, model.id, True)
        world.values["served_model_id"] = str(model.id)
    for (_method, route), ex in EXAMPLES.items():  # the World's body() fills only {dataset2_id}
        if ex.body is not None and "job_id" in ex.body:
            ex.body["job_id"] = job_id if route.startswith("/api/") else str(job_id)


def _request(world: Any, *, broken: bool = False, submit: bool = False) -> str:
    lab = world.lab
    name = "a/broken.csv" if broken else "a/table.csv"
    with lab.tx() as s:
        req = lab.airlock.create(
            s, SYSTEM, int(world.values["job_id"]), [FileChoice(name, count_columns=("residents",))]
        )
        if submit:
            lab.airlock.submit(s, SYSTEM, req.id)
        request_id = req.id
    if submit:  # the automatic checks run after the submitting transaction (outside it)
        lab.airlock.check_pending(lab.tx, request_id)
    return str(request_id)


def fill(world: Any, path: str, actor: str) -> dict[str, str]:
    values: dict[str, str] = {}
    if "{request_id}" in path:
        if path.endswith("/resubmit"):
            values["request_id"] = _request(world, broken=True, submit=True)  # returned by the checks
        elif path.endswith("/votes"):
            values["request_id"] = _request(world, submit=True)  # under review
        else:
            values["request_id"] = _request(world)  # a draft
    if "{model_id}" in path:
        if path.endswith("/predict"):
            values["model_id"] = world.values["served_model_id"]
        else:
            with world.lab.tx() as s:
                m = world.lab.models.register(
                    s, SYSTEM, int(world.values["job_id"]), "a/model.joblib", "new", CARD
                )
                if path.endswith("/decision"):
                    m.card = {**m.card, "assessment": {"verdict": "pass"}}
                values["model_id"] = str(m.id)
    return values
