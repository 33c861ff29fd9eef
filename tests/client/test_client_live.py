"""The SDK against a real server: uvicorn on 127.0.0.1 in a thread, over a real lab.

The unit tests use the SDK's fake transport; this one proves the fake and the server agree on
paths, JSON shapes, authentication and error codes.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import countylab_client as cl
from countylab.lab import Lab
from tests.browser import live_server
from tests.support import api_client, build_lab, create_user, token_for


def serve_in_thread(lab: Lab) -> Iterator[str]:
    """Run the app on a socket we bound ourselves (no port race); yield its base URL."""
    with live_server(lab) as url:
        yield url


class World:
    def __init__(self, url: str, dev_token: str, other_token: str, project_id: int, other_project_id: int):
        self.url = url
        self.dev_token = dev_token
        self.other_token = other_token
        self.project_id = project_id
        self.other_project_id = other_project_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    lab = build_lab(Path(tmp_path_factory.mktemp("client-live")))
    dev = create_user(lab, "developer", ["developer"], org="青禾康养科技有限公司", kind="enterprise")
    other = create_user(lab, "researcher", ["developer"], org="省农业科学院", kind="research")
    pid = (
        api_client(lab, dev)
        .post("/api/projects", json={"slug": "elderly-care-demand", "title": "养老服务需求预测"})
        .json()["id"]
    )
    other_pid = (
        api_client(lab, other)
        .post("/api/projects", json={"slug": "crop-yield", "title": "农作物产量模型"})
        .json()["id"]
    )
    try:
        for url in serve_in_thread(lab):
            yield World(url, token_for(lab, dev), token_for(lab, other), pid, other_pid)
    finally:
        lab.close()


def test_whoami(world):
    with cl.Client(world.url, world.dev_token) as client:
        me = client.whoami()
    assert isinstance(me, cl.User)
    assert me.username == "developer" and me.roles == ("developer",)
    assert me.org is not None and me.org.name == "青禾康养科技有限公司"


def test_projects_listing_shows_only_my_projects(world):
    with cl.Client(world.url, world.dev_token) as client:
        projects = client.projects()
        assert [(p.id, p.slug, p.title) for p in projects] == [
            (world.project_id, "elderly-care-demand", "养老服务需求预测")
        ]
        one = client.project(world.project_id)
    assert [(m.username, m.role) for m in one.members] == [("developer", "owner")]


def test_bad_token_is_an_authentication_error(world):
    with cl.Client(world.url, world.dev_token + "x") as client, pytest.raises(cl.AuthenticationError) as info:
        client.whoami()
    assert info.value.status_code == 401


def test_unknown_project_is_not_found_and_a_foreign_one_is_denied(world):
    with cl.Client(world.url, world.dev_token, lang="en") as client:
        with pytest.raises(cl.NotFoundError) as missing:
            client.project(987654)
        assert missing.value.status_code == 404 and "987654" in str(missing.value)
        with pytest.raises(cl.PermissionDeniedError) as denied:
            client.project(world.other_project_id)
        assert denied.value.code == "permission_denied"


def test_error_messages_follow_the_clients_language(world):
    for lang, expected in (("zh-CN", "不存在"), ("en", "not found")):
        client = cl.Client(world.url, world.dev_token, lang=lang)
        with client, pytest.raises(cl.NotFoundError) as info:
            client.project(987654)
        assert expected in str(info.value), (lang, str(info.value))


def test_unreachable_server_is_a_transport_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    client = cl.Client(f"http://127.0.0.1:{port}", "clk_x", timeout=2)
    with client, pytest.raises(cl.TransportError):
        client.whoami()
