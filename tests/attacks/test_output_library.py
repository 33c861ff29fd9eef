"""The output library against a lying job: structure is declared by the library, checked by the
lab, and never guessed; whatever the library did not make is free-form and read by a person.

Classes: library outputs pass (the sample project too), free-form files, lying sidecars (each
lie can only make the file free-form or the checks stricter), sidecars offered for release,
charts and metrics, and the role guessing of old (``residents`` skipped, ``lives_alone`` read
as a count).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from countylab.output import Outputs
from countylab.output.sidecar import SUFFIX
from tests.airlock.library_support import frame
from tests.airlock_e2e.conftest import World, build_world
from tests.attacks.detector_support import checks_of, failed, library_files, submit, world

__all__ = ["world"]
REPO = Path(__file__).resolve().parents[2]
VILLAGES = {("青禾村", 0): 40, ("青禾村", 1): 25, ("东岭村", 0): 33, ("东岭村", 1): 18, ("南湾村", 0): 50}
VILLAGES[("南湾村", 1)] = 12


def _people() -> pd.DataFrame:
    return frame(
        VILLAGES, ["village", "lives_alone"], visits=lambda i: (i * 7) % 5, income=lambda i: 1000 + i
    )


def _outbox(tmp_path: Path, build: Callable[[Outputs], Any]) -> dict[str, bytes]:
    return library_files(build, tmp_path / "outbox")


def _lie(files: dict[str, bytes], name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, bytes]:
    meta = json.loads(files[name + SUFFIX])
    change(meta)
    return {**files, name + SUFFIX: json.dumps(meta, ensure_ascii=False).encode()}


def _free_form(req: dict[str, Any], name: str) -> dict[str, Any]:
    lib = checks_of(req, name)["output_library"]
    assert lib["status"] == "warn" and lib["details"]["free_form"] is True, lib
    assert any("free-form: human review required" in m for m in lib["messages_en"])
    return lib


# -- library outputs pass -------------------------------------------------------------------
def test_every_kind_of_library_output_passes(world: World, tmp_path: Path) -> None:
    df = _people()

    def build(o: Outputs) -> None:
        o.crosstab("by_village.csv", df, "village", "lives_alone")
        o.pivot_table(
            "visits.csv", df, ["village", "lives_alone"], ["visits", "income"], aggfunc=["mean", "sum"]
        )
        o.describe("describe.csv", df, ["visits", "income"])
        o.ols("ols.csv", df, "visits", ["lives_alone", "income"])
        o.logit("logit.csv", df, "lives_alone", ["visits"])
        o.bar_chart(
            "visits.svg", "visits.csv", label="village", value="mean_visits", title="每村平均服务次数"
        )
        o.metrics("metrics.json", {"mae": 0.82, "r2": 0.31}, n_obs=len(df))

    req = submit(world, _outbox(tmp_path, build))
    assert req["state"] == "under_review", req["state"]
    for name, f in req["by_name"].items():
        lib = checks_of(req, name)["output_library"]
        assert lib["status"] == "pass" and lib["details"]["library"] is True, (name, lib)
        assert f["check_status"] != "fail", (name, f["checks"])


def test_sample_project_uses_the_library_and_passes(world: World, tmp_path: Path) -> None:
    data = tmp_path / "data"
    rng = np.random.default_rng(5)
    n = 800
    residents = pd.DataFrame(
        {
            "resident_id": [f"R{i:05d}" for i in range(n)],
            "age": rng.integers(45, 99, n),
            "lives_alone": rng.integers(0, 2, n).astype(bool),
            "gender": rng.choice(["男", "女"], n),
            "income": rng.normal(3000, 700, n),
            "town_code": rng.choice(["T1", "T2", "T3"], n),
        }
    )
    (data / "residents").mkdir(parents=True)
    (data / "elderly_care_records").mkdir()
    residents.to_parquet(data / "residents" / "part.parquet")
    pd.DataFrame({"resident_id": rng.choice(residents.resident_id, 2500)}).to_parquet(
        data / "elderly_care_records" / "part.parquet"
    )
    outbox = tmp_path / "outbox"
    env = {**os.environ, "COUNTYLAB_DATA": str(data), "COUNTYLAB_OUTBOX": str(outbox)}
    example = REPO / "examples" / "elderly-care-model"
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=example, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    files = {p.name: p.read_bytes() for p in outbox.iterdir() if p.is_file() and p.name != "model.joblib"}
    req = submit(world, files)
    assert req["state"] == "under_review", {
        n: [(c["check"], c["status"]) for c in f["checks"]] for n, f in req["by_name"].items()
    }
    assert all(checks_of(req, n)["output_library"]["status"] == "pass" for n in req["by_name"])


# -- free-form files ------------------------------------------------------------------------
def test_hand_written_table_is_free_form(world: World) -> None:
    req = submit(world, {"t.csv": "village,residents\n青禾村,40\n东岭村,40\n".encode()})
    assert req["state"] == "under_review"
    _free_form(req, "t.csv")


def test_free_form_file_is_never_released_automatically_even_on_grade_1(tmp_path: Path) -> None:
    w = build_world(tmp_path, grade="general_1")
    try:
        free = submit(w, {"t.csv": "village,residents\n青禾村,40\n东岭村,40\n".encode()})
        assert free["state"] == "under_review" and free["checkers_needed"] >= 1
        _free_form(free, "t.csv")
        made = _outbox(tmp_path, lambda o: o.crosstab("c.csv", _people(), "village", "lives_alone"))
        assert submit(w, made)["state"] == "released"  # library outputs: automatic checks suffice
    finally:
        w.lab.close()


# -- lying sidecars -------------------------------------------------------------------------
LIES: dict[str, Callable[[dict[str, Any]], None]] = {
    "count_raised": lambda m: m["rows"][0]["cells"]["n"].update(n=999),
    "other_content": lambda m: m.update(sha256="0" * 64),
    "count_as_group_key": lambda m: m.update(group_columns=[*m["group_columns"], "n"], count_columns=[]),
    "role_dropped": lambda m: m.update(statistic_columns=[]),
    "keys_swapped": lambda m: m["rows"][0].update(key=m["rows"][1]["key"]),
    "units_above_row_count": lambda m: m["rows"][0]["cells"]["mean_visits"].update(n=10_000),
    "contributions_hidden": lambda m: m["rows"][0]["cells"]["sum_income"].update(top=[1.0, 1.0]),
    "contributions_unsorted": lambda m: m["rows"][0]["cells"]["sum_income"].update(
        top=sorted(m["rows"][0]["cells"]["sum_income"]["top"])
    ),
    "negative_units": lambda m: m["rows"][0]["cells"]["n"].update(n=-5),
    "wrong_format": lambda m: m.update(format="acro/9"),
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_lying_sidecar_makes_the_table_free_form(world: World, tmp_path: Path, lie: str) -> None:
    files = _outbox(
        tmp_path,
        lambda o: o.pivot_table("p.csv", _people(), "village", ["visits", "income"], aggfunc=["mean", "sum"]),
    )
    req = submit(world, _lie(files, "p.csv", LIES[lie]))
    lib = _free_form(req, "p.csv")
    assert lib["details"]["reason"] != "no_metadata"
    assert checks_of(req, "p.csv")["table_sdc"]["details"]["declared"] is False


def test_a_lying_sidecar_cannot_hide_a_small_cell(world: World, tmp_path: Path) -> None:
    small = frame({("青禾村",): 40, ("东岭村",): 3}, ["village"])
    files = _outbox(
        tmp_path, lambda o: o.pivot_table("p.csv", small, "village", [], count_column="residents")
    )

    def raise_units(m: dict[str, Any]) -> None:
        for row in m["rows"]:
            row["cells"]["residents"]["n"] = 50

    req = submit(world, _lie(files, "p.csv", raise_units), count_columns=["residents"])
    failed(req, "p.csv", "table_sdc")  # free-form now, and the named count column is still checked


def test_the_sidecar_itself_is_never_released(world: World, tmp_path: Path) -> None:
    files = _outbox(tmp_path, lambda o: o.pivot_table("p.csv", _people(), "village", "income", aggfunc="sum"))
    req = submit(world, files, names=["p.csv", "p.csv" + SUFFIX])
    assert "p.csv" + SUFFIX not in req["by_name"]  # the lab never takes a sidecar into a request
    assert set(req["by_name"]) == {"p.csv"}


# -- threshold, dominance, degrees of freedom from the declaration -------------------------
def test_small_cell_of_a_library_table_fails(world: World, tmp_path: Path) -> None:
    df = frame({("青禾村",): 40, ("东岭村",): 4}, ["village"], visits=lambda i: i % 3)
    files = _outbox(tmp_path, lambda o: o.pivot_table("p.csv", df, "village", "visits"))
    failed(submit(world, files), "p.csv", "table_sdc")


def test_dominated_sum_fails(world: World, tmp_path: Path) -> None:
    df = frame({("制造业",): 12, ("零售业",): 15}, ["industry"], revenue=lambda i: 1e6 if i == 0 else 10.0)
    files = _outbox(tmp_path, lambda o: o.pivot_table("p.csv", df, "industry", "revenue", aggfunc="sum"))
    rules = {c["rule"] for c in failed(submit(world, files), "p.csv", "table_sdc")["details"]["cells"]}
    assert {"p_percent", "nk_dominance"} <= rules


def test_regression_on_too_few_units_fails(world: World, tmp_path: Path) -> None:
    df = pd.DataFrame({"y": [1.0, 2.0, 2.5, 4.0, 5.5, 5.0, 7.5, 8.0], "x": [1, 2, 3, 4, 5, 6, 7, 8]})
    files = _outbox(tmp_path, lambda o: o.ols("ols.csv", df, "y", ["x"]))
    failed(submit(world, files), "ols.csv", "table_sdc")


def test_metrics_over_too_few_units_fail(world: World, tmp_path: Path) -> None:
    files = _outbox(tmp_path, lambda o: o.metrics("m.json", {"mae": 0.5}, n_obs=3))
    failed(submit(world, files), "m.json", "output_library")


# -- charts ---------------------------------------------------------------------------------
def _chart_files(tmp_path: Path) -> dict[str, bytes]:
    def build(o: Outputs) -> None:
        o.pivot_table("v.csv", _people(), "village", "visits")
        o.bar_chart("v.svg", "v.csv", label="village", value="mean_visits")

    return _outbox(tmp_path, build)


CHART_TAMPERING = {
    "comment": lambda svg: svg.replace(b"</svg>", b"<!-- 330102195001011236 --></svg>"),
    "data_attribute": lambda svg: svg.replace(b"<rect ", b'<rect data-x="payload" ', 1),
    "bar_length": lambda svg: svg.replace(b'width="', b'width="1', 1),
}


@pytest.mark.parametrize("how", sorted(CHART_TAMPERING))
def test_a_tampered_chart_is_free_form(world: World, tmp_path: Path, how: str) -> None:
    files = _chart_files(tmp_path)
    files["v.svg"] = CHART_TAMPERING[how](files["v.svg"])
    req = submit(world, files)
    _free_form(req, "v.svg")
    assert checks_of(req, "v.csv")["output_library"]["status"] == "pass"


def test_a_chart_without_its_table_in_the_request_is_free_form(world: World, tmp_path: Path) -> None:
    req = submit(world, _chart_files(tmp_path), names=["v.svg"])
    _free_form(req, "v.svg")


# -- role guessing is gone ------------------------------------------------------------------
def test_count_column_named_like_an_identifier_is_checked(world: World, tmp_path: Path) -> None:
    df = frame({("青禾村",): 40, ("东岭村",): 2}, ["village"])
    files = _outbox(tmp_path, lambda o: o.pivot_table("r.csv", df, "village", [], count_column="residents"))
    cells = failed(submit(world, files), "r.csv", "table_sdc")["details"]["cells"]
    assert {(c["column"], c["rule"]) for c in cells} == {("residents", "threshold")}


def test_zero_one_group_key_is_not_read_as_a_count(world: World, tmp_path: Path) -> None:
    df = _people()
    files = _outbox(tmp_path, lambda o: o.pivot_table("m.csv", df, ["village", "lives_alone"], "visits"))
    req = submit(world, files)
    assert req["state"] == "under_review"
    assert checks_of(req, "m.csv")["table_sdc"]["status"] == "pass"


def test_undeclared_zero_one_column_is_not_refused(world: World) -> None:
    table = "age_band,lives_alone,residents,mean_visits\n60-69,0,87,3.4\n60-69,1,75,3.5\n"
    req = submit(world, {"metrics_table.csv": table.encode()})
    assert req["state"] == "under_review"
    assert checks_of(req, "metrics_table.csv")["table_sdc"]["status"] != "fail"
