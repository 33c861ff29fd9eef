"""The checker's complete preview through the web: built once by the checks (cached beside
the stored file), paged in the API and on the preview page, linked from the request page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from countylab.airlock.render.cache import cached
from countylab.storage.airlock_models import ReleaseFile
from tests.airlock_e2e.conftest import SAFE_TABLE, World, build_world, request_body

LOG = "".join(f"step {i}\n" for i in range(1, 451)).encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("render-pages"))
    yield w
    w.lab.close()


@pytest.fixture(scope="module")
def request_id(world: World) -> int:
    job = world.make_job({"by_village.csv": SAFE_TABLE, "run.log": LOG})
    req = world.client("dev").post(
        "/api/airlock/requests", json=request_body(job, "by_village.csv", "run.log")
    )
    assert req.status_code == 201 and req.json()["state"] == "under_review", req.text
    return int(req.json()["id"])


def _files(world: World, rid: int) -> dict[str, int]:
    view = world.client("checker").get(f"/api/airlock/requests/{rid}").json()
    return {Path(f["name"]).name: f["id"] for f in view["files"]}


def test_checks_built_the_preview_once_beside_the_stored_file(world: World, request_id: int) -> None:
    with world.lab.tx() as s:
        stored = [Path(f.stored_path) for f in s.query(ReleaseFile).filter_by(request_id=request_id)]
    assert stored and all(cached(p) for p in stored)


def test_api_pages_cover_every_line(world: World, request_id: int) -> None:
    fid = _files(world, request_id)["run.log"]
    c = world.client("checker")
    first = c.get(f"/api/airlock/files/{fid}/preview/pages").json()
    assert first["page_count"] == 3 and first["kind"] == "text"
    lines = [
        r["cells"][0]
        for n in (1, 2, 3)
        for r in c.get(f"/api/airlock/files/{fid}/preview/pages?page={n}").json()["section"]["rows"]
    ]
    assert "\n".join(lines) + "\n" == LOG.decode()
    raw = c.get(f"/api/airlock/files/{fid}/preview")
    assert raw.content == LOG and raw.headers["x-content-sha256"] == first["sha256"]


def test_preview_is_for_independent_checkers_only(world: World, request_id: int) -> None:
    fid = _files(world, request_id)["run.log"]
    for who in ("dev", "nobody"):
        assert world.client(who).get(f"/api/airlock/files/{fid}/preview/pages").status_code == 403


def _cookie_client(world: World, who: str) -> object:
    from fastapi.testclient import TestClient

    from countylab.web.app import create_app
    from tests.support import browser_login

    client = TestClient(create_app(world.lab), raise_server_exceptions=False)
    browser_login(client, who)
    return client


def test_request_page_links_every_file_to_its_complete_preview(world: World, request_id: int) -> None:
    client = _cookie_client(world, "checker")
    page = client.get(f"/airlock/requests/{request_id}")  # type: ignore[attr-defined]
    assert page.status_code == 200 and "preview-table" in page.text
    files = _files(world, request_id)
    for fid in files.values():
        assert f"/airlock/files/{fid}/view" in page.text
    last = client.get(f"/airlock/files/{files['run.log']}/view?page=3")  # type: ignore[attr-defined]
    assert last.status_code == 200 and ">step 450<" in last.text and ">step 1<" not in last.text
    assert re.search(r'id="preview-page-count">3 / 3<', last.text)
    table = client.get(f"/airlock/files/{files['by_village.csv']}/view")  # type: ignore[attr-defined]
    assert "青禾村" in table.text and "full-preview-table" in table.text


def test_a_missing_preview_is_rebuilt_before_the_write_transaction(world: World, request_id: int) -> None:
    import shutil

    fid = _files(world, request_id)["by_village.csv"]
    with world.lab.tx() as s:
        stored = Path(s.get(ReleaseFile, fid).stored_path)  # type: ignore[union-attr]
    shutil.rmtree(stored.with_name(stored.name + ".render"))
    assert not cached(stored)
    page = world.client("checker").get(f"/api/airlock/files/{fid}/preview/pages")
    assert page.status_code == 200 and page.json()["section"]["rows"][1]["cells"] == ["青禾村", "40"]
    assert cached(stored)
