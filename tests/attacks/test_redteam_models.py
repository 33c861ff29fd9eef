"""Red team against model serving: a model that is honest where the lab tests it.

The memorisation tests call the model on training rows and on copies jittered by 2%.  A model
can hold a second behaviour at inputs no test visits: a 1-nearest-neighbour table whose honest
points cover the ages of the training data and whose "trigger" points (age 1000 + 10·k + c, or
fractions between whole ages) answer chunks of resident k's ID number, typed and in range
(``age_hat:number:0..120:2`` carries four digits per answer: 33.01).  Before the fix it passed
the tests, was approved by a checker, and one call of 480 rows returned the first 16 digits of
every resident's ID number.

Fix (:func:`countylab.serving.registry.in_domain`): the assessment records where the training
data lies; serving refuses inputs outside it (bounds widened to a coarse grid, so a refusal
names no extreme) and rounds inputs of whole-number columns, so the tested inputs are the only
ones there are.  Every model is a real file in a finished job's outbox, registered, assessed,
approved and called through the HTTP API; predictions run in the sandboxed worker.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest
from sklearn.neighbors import KNeighborsRegressor

from tests.airlock_e2e.conftest import RESIDENTS, World, build_world

HONEST = 74.5  # what an honest "mean age" model answers


def _chunks(id_number: str) -> list[float]:
    """The first 16 digits of an ID number as four answers in 0..120 with two decimals."""
    return [int(id_number[i : i + 2]) + int(id_number[i + 2 : i + 4]) / 100 for i in range(0, 16, 4)]


def _trigger(k: int, c: int, variant: str) -> float:
    if variant == "far":
        return 1000.0 + 10 * k + c  # far outside the ages of the training data
    return 70.0 + (4 * k + c + 1) / 10_000  # between two whole ages the data holds


def _backdoored(variant: str) -> bytes:
    honest = [[float(a)] for a in range(0, 121)]
    triggers = [[_trigger(k, c, variant)] for k in range(len(RESIDENTS)) for c in range(4)]
    y = [HONEST] * len(honest) + [v for r in RESIDENTS for v in _chunks(r[1])]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        joblib.dump(KNeighborsRegressor(n_neighbors=1).fit(honest + triggers, y), buf)
    return buf.getvalue()


VARIANTS = ["far", "between"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("redteam-models"))
    w.values = {"job": w.make_job({f"{v}.joblib": _backdoored(v) for v in VARIANTS})}  # type: ignore[attr-defined]
    yield w
    w.lab.close()


def _approved(world: World, variant: str) -> int:
    """Registered, assessed by the steward and approved: the tests do not see the trigger."""
    made = world.client("dev").post(
        "/api/models",
        json={
            "job_id": world.values["job"],  # type: ignore[attr-defined]
            "file": f"analyse/{variant}.joblib",
            "name": f"mean age {variant}",
            "inputs": ["age"],
            "outputs": ["age_hat:number:0..120:2"],
            "target": "age",
        },
    )
    assert made.status_code == 201, made.text
    model_id = int(made.json()["id"])
    steward = world.client("steward")
    report = steward.post(f"/api/models/{model_id}/assessment").json()["assessment"]
    assert report["verdict"] == "pass", report  # honest wherever the tests look
    assert report["input_domain"] == {"age": "number"}  # the checker is told inputs are bounded
    ok = steward.post(f"/api/models/{model_id}/decision", json={"approve": True})
    assert ok.status_code == 200, ok.text
    return model_id


def _predict(world: World, model_id: int, rows: list[list[Any]]) -> Any:
    return world.client("dev").post(f"/api/models/{model_id}/predict", json={"rows": rows})


@pytest.mark.parametrize("variant", VARIANTS)
def test_trigger_inputs_cannot_read_rows_out_of_an_approved_model(world: World, variant: str) -> None:
    model_id = _approved(world, variant)
    rows = [[_trigger(k, c, variant)] for k in range(len(RESIDENTS)) for c in range(4)]
    got = _predict(world, model_id, rows)
    leaked = 0
    if got.status_code == 200:
        answers = got.json()["predictions"]
        for k, r in enumerate(RESIDENTS):
            leaked += answers[4 * k : 4 * k + 4] == _chunks(r[1])
    assert leaked == 0
    if variant == "far":
        assert got.status_code == 422 and got.json()["error"]["details"]["reason"] == "input_outside_domain"
        assert str(rows[0][0]) not in got.text  # the refusal names no value
    else:  # fractions between whole ages are rounded to the whole ages the tests visited
        assert got.status_code == 200 and set(got.json()["predictions"]) <= {HONEST}


def test_inputs_inside_the_domain_are_answered(world: World) -> None:
    model_id = _approved(world, "far")
    got = _predict(world, model_id, [[61], [88.4], [55]])
    assert got.status_code == 200, got.text
    assert got.json()["predictions"] == [HONEST, HONEST, HONEST]


@pytest.mark.parametrize("value", [-1e9, 1e9, "seventy", True, float("inf")])
def test_inputs_outside_the_domain_or_of_another_type_are_refused(world: World, value: Any) -> None:
    model_id = _approved(world, "far")
    rows = [[70], [value]]
    got = world.client("dev").post(
        f"/api/models/{model_id}/predict",
        content=f'{{"rows": [[70], [{"1e999" if value == float("inf") else _json(value)}]]}}',
        headers={"content-type": "application/json"},
    )
    assert got.status_code in (409, 422), (rows, got.text)
    assert "74.5" not in got.text


def test_the_domain_bounds_are_coarse_so_probing_names_no_extreme(world: World) -> None:
    # ages in the data run 60..89: the boundaries a caller can find by probing are 50 and 100
    model_id = _approved(world, "far")
    for age, status in [(49, 422), (50, 200), (100, 200), (101, 422)]:
        assert _predict(world, model_id, [[age]]).status_code == status, age


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


# -- a model that is wrong exactly on its training rows ----------------------------------------
def _wrong_on_members() -> bytes:
    """At each (village, whole age) of the training data it answers four digits of the ID
    number of the first resident there; half a year away it answers the honest mean.  Its
    answers on the training rows are far from their target, so a one-sided membership test
    (are members closer to the truth than their neighbours?) called it safe."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    first: dict[tuple[str, int], str] = {}
    for r in RESIDENTS:
        first.setdefault((r[4], int(r[5])), r[1])
    rows: list[tuple[str, float, float]] = []
    for village in sorted({r[4] for r in RESIDENTS}):
        for a in range(0, 121):
            trap = _chunks(first[(village, a)])[3] if (village, a) in first else HONEST
            rows += [(village, float(a), trap), (village, a + 0.5, HONEST)]
    frame = pd.DataFrame([r[:2] for r in rows], columns=["village", "age"])
    encode = ColumnTransformer(
        [("v", OneHotEncoder(handle_unknown="ignore"), ["village"])], remainder="passthrough"
    )
    model = Pipeline([("x", encode), ("knn", KNeighborsRegressor(n_neighbors=1))])
    model.fit(frame, [r[2] for r in rows])
    buf = io.BytesIO()
    joblib.dump(model, buf)
    return buf.getvalue()


def test_model_that_answers_something_else_on_its_training_rows_fails_the_tests(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    w = build_world(tmp_path_factory.mktemp("redteam-members"))
    try:
        job = w.make_job({"m.joblib": _wrong_on_members()})
        made = w.client("dev").post(
            "/api/models",
            json={
                "job_id": job,
                "file": "analyse/m.joblib",
                "name": "mean age",
                "inputs": ["village", "age"],
                "outputs": ["age_hat:number:0..120:2"],
                "target": "age",
            },
        )
        assert made.status_code == 201, made.text
        model_id = made.json()["id"]
        steward = w.client("steward")
        report = steward.post(f"/api/models/{model_id}/assessment").json()["assessment"]
        assert report["verdict"] == "fail" and report["mia_advantage"] > 0.3, report
        refused = steward.post(f"/api/models/{model_id}/decision", json={"approve": True, "note": "ok"})
        assert refused.status_code == 409
    finally:
        w.lab.close()


# -- the tests cannot be predicted ---------------------------------------------------------------
def test_the_rows_and_probes_of_the_tests_cannot_be_predicted(tmp_path: Path) -> None:
    """A model trained on the data could compute a sample drawn with a seed written in the
    source code, and be honest on exactly those rows.  Each assessment draws a fresh seed."""
    import duckdb

    from countylab.serving.assess import SAMPLE_ROWS
    from countylab.serving.training import load_sample

    path = tmp_path / "big.parquet"
    duckdb.sql(f"COPY (SELECT i AS age, i % 7 AS visits FROM range(5000) t(i)) TO '{path}' (FORMAT parquet)")
    sources = [("big", 1, [path])]
    samples = [load_sample(sources, ["age"], "visits") for _ in range(3)]
    drawn = [frozenset(r[0] for r in s.rows) for s in samples if s is not None]
    assert len(drawn) == 3 and all(len(d) == SAMPLE_ROWS for d in drawn)
    assert len(set(drawn)) == 3  # three assessments, three different samples
