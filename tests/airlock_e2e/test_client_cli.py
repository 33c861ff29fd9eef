"""The SDK and the CLI against a live server: release create/submit/list/download and
model register/predict, over real HTTP."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest
from sklearn.linear_model import LinearRegression
from typer.testing import CliRunner

import countylab_client as cl
from countylab.cli import app
from tests.airlock_e2e.conftest import SAFE_TABLE, World, build_world
from tests.browser import live_server
from tests.support import token_for


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    world = build_world(tmp_path_factory.mktemp("client-airlock"), grade="general_2")  # one checker
    with live_server(world.lab) as base:
        yield world, base
    world.lab.close()


def test_client_release_flow(live: tuple[World, str], tmp_path: Path) -> None:
    world, base = live
    job = world.make_job({"by_village.csv": SAFE_TABLE})
    with cl.Client(base, token_for(world.lab, world.users["dev"])) as dev:
        box = dev.outbox(job)  # selectors from countylab.yaml and counts, never names or sizes
        assert box["selectors"] == ["*", "logs", "analyse/by_village.csv"] and box["counts"]["*"] == 1
        assert "files" not in box
        entry = cl._airlock.file_entry(
            "analyse/by_village.csv", description="各村人数", count_columns=["residents"]
        )
        r = dev.create_release(job, [entry], title="各村人数")
        assert r.state == "draft"
        submitted = dev.submit_release(r.id)
        assert submitted.state == "under_review" and submitted.raw["files_count"] == 1
        assert submitted.files[0]["name"] is None  # not before release
    with cl.Client(base, token_for(world.lab, world.users["checker"])) as checker:
        assert r.id in [x.id for x in checker.releases("queue")]
        assert checker.vote_release(r.id, "approve").state == "released"
    with cl.Client(base, token_for(world.lab, world.users["dev"])) as dev:
        released = [f for f in dev.released_files() if f.request_id == r.id]
        data = dev.download_release_file(released[0].id, to=tmp_path / "t.csv")
        assert data == SAFE_TABLE and hashlib.sha256(data).hexdigest() == released[0].released_sha256


def test_cli_release_create_list_download(live: tuple[World, str], tmp_path: Path) -> None:
    world, base = live
    job = world.make_job({"by_village.csv": SAFE_TABLE})
    dev = ["--url", base, "--token", token_for(world.lab, world.users["dev"])]
    runner = CliRunner()
    done = runner.invoke(
        app,
        [
            "release",
            "create",
            "--job",
            str(job),
            "--file",
            "analyse/by_village.csv",
            "--count-column",
            "residents",
            "--note",
            "各村人数",
            "--submit",
            *dev,
        ],
    )
    assert done.exit_code == 0, done.output
    rid = int(re.search(r"出域申请 (\d+):", done.output).group(1))  # type: ignore[union-attr]
    assert "审核中" in done.output  # the state by name (F's labels), Chinese by default
    listed = runner.invoke(app, ["release", "list", *dev])
    assert listed.exit_code == 0 and str(rid) in listed.output
    with cl.Client(base, token_for(world.lab, world.users["checker"])) as checker:
        checker.vote_release(rid, "approve")
    got = runner.invoke(app, ["release", "download", str(rid), "--to", str(tmp_path), *dev])
    assert got.exit_code == 0, got.output
    assert (tmp_path / "by_village.csv").read_bytes() == SAFE_TABLE
    # an unknown request is a failure with one line, not an empty success
    missing = runner.invoke(app, ["release", "download", str(rid + 999), "--to", str(tmp_path / "x"), *dev])
    assert missing.exit_code != 0 and type(missing.exception).__name__ == "UserError"  # one line in main()
    assert f"request {rid + 999} has no released files" in str(missing.exception)
    assert not (tmp_path / "x").exists()


@pytest.mark.needs("sandbox")
def test_cli_model_register_and_predict(live: tuple[World, str]) -> None:
    world, base = live
    buf = io.BytesIO()
    joblib.dump(LinearRegression().fit([[60], [70], [80]], [1.0, 2.0, 3.0]), buf)
    job = world.make_job({"model.joblib": buf.getvalue()})
    dev = ["--url", base, "--token", token_for(world.lab, world.users["dev"])]
    runner = CliRunner()
    done = runner.invoke(
        app,
        [
            "model",
            "register",
            "--job",
            str(job),
            "--file",
            "analyse/model.joblib",
            "--name",
            "需求",
            "--input",
            "age",
            "--output",
            "prediction:number:0..10:1",
            *dev,
        ],
    )
    assert done.exit_code == 0, done.output
    mid = int(re.search(r"模型 (\d+):", done.output).group(1))  # type: ignore[union-attr]
    stewards = ["--url", base, "--token", token_for(world.lab, world.users["steward"])]
    tested = runner.invoke(app, ["model", "assess", str(mid), *stewards])
    assert tested.exit_code == 0 and '"verdict": "warn"' in tested.output, tested.output  # no target column
    with cl.Client(base, token_for(world.lab, world.users["steward"])) as steward:
        assert steward.assess_model(mid)["rows"] == 120
        assert steward.decide_model(mid, True, note="线性模型").state == "approved"
    got = runner.invoke(app, ["model", "predict", str(mid), "--rows", "[[65]]", *dev])
    assert got.exit_code == 0 and "1.5" in got.output, got.output
    # by named fields: the CLI's --field, the SDK's model.schema and model.predict({...})
    named = runner.invoke(app, ["model", "predict", str(mid), "--field", "age=65", *dev])
    assert named.exit_code == 0 and "1.5" in named.output, named.output
    wrong = runner.invoke(app, ["model", "predict", str(mid), "--field", "agee=65", *dev])
    assert wrong.exit_code != 0 and "agee" in str(wrong.exception), wrong.output  # main() prints it
    with cl.Client(base, token_for(world.lab, world.users["dev"])) as client:
        model = client.model(mid)
        assert [(f.name, f.type) for f in model.schema] == [("age", "integer")]
        assert model.predict({"age": 65}) == 1.5 and model.predict([{"age": 65}, [75]]) == [1.5, 2.5]


def test_sdk_and_cli_resubmit_with_replies(live: tuple[World, str]) -> None:
    """A returned request: the SDK drops a file and replies; the CLI resubmits it again."""
    world, base = live
    job = world.make_job({"by_village.csv": SAFE_TABLE, "notes.txt": b"method notes\n"})
    with cl.Client(base, token_for(world.lab, world.users["dev"])) as dev:
        r = dev.create_release(job, ["analyse/by_village.csv", "analyse/notes.txt"], submit=True)
        assert r.state == "under_review", r.raw
    with cl.Client(base, token_for(world.lab, world.users["checker"])) as checker:
        asked = checker.comment_release(r.id, "notes.txt 不需要")
        assert checker.vote_release(r.id, "return", "改").state == "returned"
    with cl.Client(base, token_for(world.lab, world.users["dev"])) as dev:
        again = dev.resubmit_release(r.id, files=["analyse/by_village.csv"], replies={asked["id"]: "已去掉"})
        assert again.raw["round"] == 2 and again.raw["changes"]["counts"] == {"removed": 1, "unchanged": 1}
        assert any(c["reply_to"] == asked["id"] for c in again.raw["comments"])
    with cl.Client(base, token_for(world.lab, world.users["checker"])) as checker:
        assert checker.vote_release(r.id, "return", "再改").state == "returned"
    dev_args = ["--url", base, "--token", token_for(world.lab, world.users["dev"])]
    got = CliRunner().invoke(
        app, ["release", "resubmit", str(r.id), "--reply", f"{asked['id']}=好的", *dev_args]
    )
    assert got.exit_code == 0 and "轮次 3" in got.output and "审核中" in got.output, got.output
