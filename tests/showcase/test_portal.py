"""The public portal on the demo lab: anonymous pages, stories, gallery, retraction, leader access."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from countylab.airlock.service import FileChoice
from countylab.lab import Lab
from countylab.showcase import cache, withdrawal
from countylab.storage.airlock_models import ReleaseFile, ReleaseRequest
from countylab.storage.models import Project
from countylab.web.app import create_app
from tests.showcase.portal_fixtures import DEMO_PASSWORD, demo_lab
from tests.showcase.portal_fixtures import principal as _principal
from tests.support import browser_login

PUBLIC = [
    "/public",
    "/public/projects",
    "/public/gallery",
    "/public/open-data",
    "/public/api/overview",
    "/public/api/projects",
    "/public/api/gallery",
    "/public/api/open-data",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = demo_lab(tmp_path_factory.mktemp("portal"))
    yield lab
    lab.close()


@pytest.fixture
def anon(lab: Lab) -> TestClient:
    cache.clear()
    return TestClient(create_app(lab), raise_server_exceptions=False)


def _project(lab: Lab, slug: str) -> int:
    with lab.read() as s:
        return int(s.execute(select(Project.id).where(Project.slug == slug)).scalar_one())


def _released(lab: Lab, slug: str) -> int:
    with lab.read() as s:
        return int(
            s.execute(
                select(ReleaseRequest.id).where(
                    ReleaseRequest.project_id == _project(lab, slug),
                    ReleaseRequest.state.in_(("released", "retracted")),
                )
            ).scalar_one()
        )


def test_public_pages_render_anonymously(anon: TestClient, lab: Lab) -> None:
    for path in PUBLIC:
        resp = anon.get(path, follow_redirects=False)
        assert resp.status_code == 200, (path, resp.text[:300])
    home = anon.get("/public").text
    for href in (
        "/public/scenarios",
        "/public/notices",
        "/public/projects",
        "/public/gallery",
        "/public/map",
        "/public/dashboards",
        "/public/open-data",
    ):
        assert f'href="{href}"' in home
    assert "echarts" not in home  # the home page loads no chart library
    overview = anon.get("/public/api/overview").json()
    assert overview["datasets"] == sum(d["datasets"] for d in overview["datasets_by_department"]) >= 9
    assert overview["projects"] >= 2 and overview["releases"] >= 2 and overview["queries"] >= 1


def test_elderly_story_shows_released_metrics_and_dp_with_interval(anon: TestClient, lab: Lab) -> None:
    pid = _project(lab, "elderly-care-demand")
    page = anon.get(f"/public/projects/{pid}")
    assert page.status_code == 200
    assert "养老服务需求预测" in page.text and "决定系数" in page.text
    story = anon.get(f"/public/api/projects/{pid}").json()
    kinds = [c["chart"]["source"]["kind"] for c in story["charts"]]
    assert kinds == ["release", "dp"]
    dp = story["charts"][1]["chart"]["series"][0]
    assert all(
        lo is not None and hi is not None and lo <= hi for lo, hi in zip(dp["low"], dp["high"], strict=True)
    )
    release = story["charts"][0]["release"]
    assert release["number"].startswith("R-") and {a["role"] for a in release["approvals"]} == {"checker"}
    assert len(release["approvals"]) == 2
    assert "陈审核" not in page.text and "周复核" not in page.text  # roles, never the checkers' names


def test_a_draft_story_is_not_public(anon: TestClient, lab: Lab) -> None:
    from countylab.showcase import stories

    operator = _principal(lab, "operator")
    pid = _project(lab, "elderly-care-demand")
    with lab.tx() as s:
        stories.set_published(s, operator, pid, False)
    cache.clear()
    try:
        assert anon.get(f"/public/projects/{pid}").status_code == 404
        assert anon.get(f"/public/api/projects/{pid}").status_code == 404
        assert all(st["project_id"] != pid for st in anon.get("/public/api/projects").json()["items"])
    finally:
        with lab.tx() as s:
            stories.set_published(s, operator, pid, True)
        cache.clear()


def test_leader_reads_released_results_only(lab: Lab) -> None:
    leader = TestClient(create_app(lab), raise_server_exceptions=False)
    browser_login(leader, "leader", DEMO_PASSWORD)
    released = _released(lab, "elderly-care-demand")
    assert leader.get(f"/airlock/requests/{released}").status_code == 403  # the airlock stays closed
    page = leader.get(f"/showcase/releases/{released}")
    assert page.status_code == 200 and "决定系数" in page.text
    assert leader.get("/showcase").status_code == 200
    # a request under review: not through the airlock, not through the showcase
    dev = _principal(lab, "developer")
    with lab.read() as s:
        job_id = s.execute(select(ReleaseRequest.job_id).where(ReleaseRequest.id == released)).scalar_one()
    with lab.tx() as s:
        req = lab.airlock.create(s, dev, job_id, [FileChoice("train/metrics.csv")], title="second look")
        lab.airlock.submit(s, dev, req.id)
        pending = req.id
    lab.airlock.check_pending(lab.tx, pending)
    with lab.read() as s:
        assert s.get(ReleaseRequest, pending).state == "under_review"
    assert leader.get(f"/airlock/requests/{pending}").status_code == 403
    assert leader.get(f"/showcase/releases/{pending}").status_code == 404
    assert "second look" not in leader.get("/showcase").text
    with lab.read() as s:
        file_id = s.execute(select(ReleaseFile.id).where(ReleaseFile.request_id == released)).scalar_one()
    assert leader.get(f"/airlock/files/{file_id}/download").status_code == 403


def test_retracted_release_vanishes_everywhere(anon: TestClient, lab: Lab) -> None:
    crop = _project(lab, "crop-yield")
    request_id = _released(lab, "crop-yield")
    assert anon.get(f"/public/gallery/{request_id}").status_code == 200
    before = anon.get(f"/public/api/projects/{crop}").json()
    assert len(before["charts"]) == 1
    researcher = TestClient(create_app(lab), raise_server_exceptions=False)
    browser_login(researcher, "researcher", DEMO_PASSWORD)
    with lab.read() as s:
        file_id = s.execute(select(ReleaseFile.id).where(ReleaseFile.request_id == request_id)).scalar_one()
    assert researcher.get(f"/airlock/files/{file_id}/download").status_code == 200

    checker = TestClient(create_app(lab), raise_server_exceptions=False)
    csrf = browser_login(checker, "checker", DEMO_PASSWORD)
    refused = checker.post(
        f"/showcase/releases/{request_id}/retract",
        data={"csrf_token": csrf, "reason": " "},
        follow_redirects=False,
    )
    assert refused.headers.get("X-Countylab-Outcome") == "refused"
    done = checker.post(
        f"/showcase/releases/{request_id}/retract",
        data={"csrf_token": csrf, "reason": "发现与另一出域表可差分"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    with lab.read() as s:
        assert s.get(ReleaseRequest, request_id).state == "retracted"
        assert withdrawal.retraction_of(s, request_id).reason == "发现与另一出域表可差分"
        from countylab.storage.models import AuditEvent

        events = s.execute(select(AuditEvent).where(AuditEvent.action == "release.retract")).scalars().all()
        assert [e.target for e in events] == [f"release:{request_id}"]
    assert anon.get(f"/public/gallery/{request_id}").status_code == 404
    assert f"/public/gallery/{request_id}" not in anon.get("/public/gallery").text
    assert f"R-{request_id}" not in anon.get("/public").text
    assert anon.get(f"/public/api/projects/{crop}").json()["charts"] == []
    assert researcher.get(f"/airlock/files/{file_id}/download").status_code == 409  # no longer downloadable
    assert anon.get("/public/api/overview").json()["releases"] >= 1


def test_operator_cannot_retract_and_leader_cannot_manage(lab: Lab) -> None:
    for who in ("operator", "leader"):
        client = TestClient(create_app(lab), raise_server_exceptions=False)
        csrf = browser_login(client, who, DEMO_PASSWORD)
        released = _released(lab, "elderly-care-demand")
        resp = client.post(
            f"/showcase/releases/{released}/retract",
            data={"csrf_token": csrf, "reason": "x"},
            follow_redirects=False,
        )
        assert resp.headers.get("X-Countylab-Outcome") == "refused", who
    leader = TestClient(create_app(lab), raise_server_exceptions=False)
    browser_login(leader, "leader", DEMO_PASSWORD)
    assert leader.get(f"/showcase/stories/{_project(lab, 'crop-yield')}").status_code == 403
