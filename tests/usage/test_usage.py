"""Providers see who uses their data: grants, DP queries per project and month, jobs, releases
and models of each dataset of their department; aggregates only, never query text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from countylab.storage.airlock_models import RegisteredModel
from countylab.storage.privacy_models import PROJECT_WIDE, BudgetEntry, QueryRun
from countylab_client import Client, PermissionDeniedError
from tests.airlock_e2e.conftest import SAFE_TABLE, World, build_world, request_body
from tests.browser import live_server
from tests.support import browser_login, create_user, token_for

SECRET_SQL = "SELECT village, COUNT(*) FROM residents WHERE name LIKE '张%' GROUP BY village"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("usage"))
    w.users["provider"] = create_user(w.lab, "provider", ["provider"], org="县民政局")
    w.users["provider_other"] = create_user(w.lab, "provider_other", ["provider"], org="县卫健委")
    # what the DP gateway writes for charged queries: a run and a project-wide charge each
    with w.lab.tx() as s:
        for project_id, month, eps in [
            (w.project_id, 11, 0.5),
            (w.project_id, 11, 0.25),
            (w.project_id, 12, 1.0),
            (w.other_project_id, 12, 0.1),
        ]:
            at = datetime(2026, month, 10, 3, 0, tzinfo=UTC)
            run = QueryRun(
                project_id=project_id,
                user_id=w.users["dev"],
                username="dev",
                sql=SECRET_SQL,
                mode="dp",
                epsilon=eps,
                epsilon_spent=eps,
                datasets=["residents@v1"],
                status="answered",
                created_at=at,
            )
            s.add(run)
            s.flush()
            for user_id in (
                PROJECT_WIDE,
                w.users["dev"],
            ):  # the analyst's own ledger row is not counted twice
                s.add(
                    BudgetEntry(
                        project_id=project_id,
                        dataset_id=w.dataset_id,
                        user_id=user_id,
                        kind="charge",
                        epsilon=eps,
                        delta=0.0,
                        query_id=run.id,
                        at=at,
                    )
                )
    job = w.make_job({"by_village.csv": SAFE_TABLE})
    w.make_job({"x.csv": SAFE_TABLE}, project="other", datasets=())  # reads nothing of ours
    resp = w.client("dev").post("/api/airlock/requests", json=request_body(job, "by_village.csv"))
    assert resp.status_code == 201, resp.text
    with w.lab.tx() as s:
        s.add(
            RegisteredModel(
                project_id=w.project_id,
                job_id=job,
                name="养老风险模型",
                file_name="m.onnx",
                format="onnx",
                stored_path="/nonexistent",
                sha256="0" * 64,
                card={"datasets": [{"name": "residents", "version": 1}]},
                state="approved",
                created_by=w.users["dev"],
            )
        )
    yield w
    w.lab.close()


def test_provider_sees_grants_queries_jobs_releases_and_models(world: World) -> None:
    u = world.client("provider").get(f"/api/datasets/{world.dataset_id}/usage").json()
    assert [(g["project"], g["organisation"]) for g in u["grants"]] == [
        ("养老需求", "青禾康养科技有限公司"),
        ("另一个项目", "青禾康养科技有限公司"),
    ]
    channels = {g["project"]: g["channels"] for g in u["grants"]}
    assert channels == {"养老需求": ["dp", "jobs", "models"], "另一个项目": ["dp"]}
    by_month = {(q["project"], q["month"]): (q["queries"], q["epsilon"]) for q in u["dp_queries"]}
    assert by_month == {
        ("养老需求", "2026-11"): (2, 0.75),
        ("养老需求", "2026-12"): (1, 1.0),
        ("另一个项目", "2026-12"): (1, 0.1),
    }
    assert u["dp_totals"] == {"queries": 4, "epsilon": 1.85}
    assert u["jobs_total"] == 1 and u["jobs"][0]["project"] == "养老需求"
    assert (
        u["releases_total"] == 1
        and u["releases"][0]["title"] == "测试出域"
        and u["releases"][0]["files"] == 1
    )
    assert [m["name"] for m in u["models"]] == ["养老风险模型"]
    assert "LIKE" not in json.dumps(u, ensure_ascii=False)  # no query text of anyone


def test_only_the_department_and_the_steward_see_it(world: World) -> None:
    url = f"/api/datasets/{world.dataset_id}/usage"
    assert world.client("steward").get(url).status_code == 200
    for who in ("provider_other", "dev", "checker"):
        assert world.client(who).get(url).status_code == 403, who
    assert world.client("provider_other").get("/api/usage").json() == {"items": []}
    [line] = world.client("provider").get("/api/usage").json()["items"]
    assert (
        line["title"],
        line["grants"],
        line["dp_queries"],
        line["jobs"],
        line["releases"],
        line["models"],
    ) == ("常住人口", 2, 4, 1, 1, 1)


def test_pages(world: World) -> None:
    c = TestClient(world.client("provider").app)
    browser_login(c, "provider")
    assert f'href="/datasets/{world.dataset_id}/usage"' in c.get(f"/datasets/{world.dataset_id}").text
    page = c.get(f"/datasets/{world.dataset_id}/usage").text
    for words in ("授权项目", "隐私计算查询", "2026-11", "养老风险模型", "测试出域", "青禾康养科技有限公司"):
        assert words in page, words
    assert "LIKE" not in page
    assert "常住人口" in c.get("/usage").text
    other = TestClient(world.client("provider").app)
    browser_login(other, "provider_other")
    assert other.get(f"/datasets/{world.dataset_id}/usage").status_code == 403


def test_sdk(world: World) -> None:
    with live_server(world.lab) as url:
        with Client(url, token_for(world.lab, world.users["provider"])) as client:
            assert client.dataset_usage(world.dataset_id)["dp_totals"]["queries"] == 4
            assert [d["name"] for d in client.usage()] == ["residents"]
        with (
            Client(url, token_for(world.lab, world.users["dev"])) as client,
            pytest.raises(PermissionDeniedError),
        ):
            client.dataset_usage(world.dataset_id)
