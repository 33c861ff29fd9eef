# ruff: noqa: E501 - attack payloads read best on one line each
"""Hostile images against the checker's browser (issue 12, item 8): SVG is code, a PNG can be
HTML, a small file can decode to gigapixels.

Real Chromium, a real lab, and a real listener on 127.0.0.1 that counts every request: a
script that runs, a ``foreignObject`` that loads, an external ``href`` (``http://``,
``file://``, ``xlink``) that is followed — each would reach the listener or change the page.
Three layers are tested, each on its own:

1. the automatic checks return a request with active SVG content, and nothing of it is served;
2. what the lab serves for an image is its own regeneration (no script, no reference out), and
   the checker's page shows it only through ``<img>`` (never inlined);
3. even the *raw* hostile bytes, served with the preview route's own headers (CSP ``sandbox``,
   ``default-src 'none'``, ``nosniff``) and opened as a top-level document, run nothing and
   fetch nothing.

A pixel bomb is refused in bounded time and the lab stays responsive.
"""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from countylab.airlock.render import svg as svg_render
from countylab.airlock.render.model import Limits
from countylab.web.api.airlock import _file_response
from tests.airlock_e2e.conftest import World, build_world
from tests.browser import Session, live_server
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class _Listener:
    """An HTTP server on 127.0.0.1 that records every path asked of it."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = hits
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def listener() -> Iterator[_Listener]:
    got = _Listener()
    yield got
    got.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    world = build_world(tmp_path_factory.mktemp("image-attacks"), grade="general_2")  # one checker
    with live_server(world.lab) as base:
        yield world, base
    world.lab.close()


def hostile_svgs(url: str) -> dict[str, str]:
    head = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="200" height="100">'
    bar = '<rect x="10" y="10" width="80" height="40" fill="#336699"/><text x="10" y="80">人数</text>'
    return {
        "script.svg": f"{head}{bar}<script>fetch('{url}/script');document.title='pwned'</script></svg>",
        "onload.svg": head.replace("<svg ", f"<svg onload=\"fetch('{url}/onload')\" ") + bar + "</svg>",
        "foreign.svg": f'{head}{bar}<foreignObject width="100" height="50"><iframe xmlns="http://www.w3.org/1999/xhtml" src="{url}/foreign"></iframe></foreignObject></svg>',
        "href.svg": f'{head}{bar}<image href="{url}/href.png" width="10" height="10"/></svg>',
        "xlink.svg": f'{head}{bar}<image xlink:href="{url}/xlink.png" width="10" height="10"/><use xlink:href="file:///etc/passwd#x"/></svg>',
        "css.svg": f'{head}<style>@import url({url}/css.css);</style><rect width="9" height="9" style="fill:url({url}/fill)"/></svg>',
    }  # fmt: skip


def polyglot_png(url: str) -> bytes:
    """A valid PNG whose bytes after IEND are an HTML page that phones home."""
    buf = io.BytesIO()
    Image.new("RGB", (60, 30), (200, 40, 40)).save(buf, "PNG")
    return (
        buf.getvalue()
        + f"<html><script>fetch('{url}/polyglot')</script><img src='{url}/poly.png'></html>".encode()
    )


def pixel_bomb() -> bytes:
    """A 60,000 × 60,000 PNG of zeros: about 60 KB on disk, 10 GB once decoded."""
    width = height = 60_000
    raw = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * width  # filter byte + 1 byte/pixel (greyscale)
    body = b"".join(raw.compress(row) for _ in range(200)) + raw.flush()  # rows are never all there

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")  # fmt: skip


def _login(session: Session, username: str) -> None:
    session.go("/login")
    session.page.fill("input[name=username]", username)
    session.page.fill("input[name=password]", PASSWORD)
    session.page.click("#login-form button[type=submit]")
    session.page.wait_for_url(session.base + "/")


def _request(world: World, files: dict[str, bytes]) -> dict[str, Any]:
    job = world.make_job(files)
    body = {"job_id": job, "title": "图", "files": [{"name": f"analyse/{n}"} for n in files], "submit": True}
    resp = world.client("dev").post("/api/airlock/requests", json=body)
    assert resp.status_code == 201, resp.text
    return dict(world.client("checker").get(f"/api/airlock/requests/{resp.json()['id']}").json())


def test_active_svg_is_returned_and_nothing_of_it_is_served(
    site: tuple[World, str], listener: _Listener, browser: Any, artifacts: Path
) -> None:
    world, base = site
    for name, body in hostile_svgs(listener.url).items():
        req = _request(world, {name: body.encode()})
        assert req["state"] == "returned", (name, req["state"])
        assert "images" in req["failed_rules"], (name, req["failed_rules"])
        for f in req["files"]:
            assert world.client("checker").get(f"/api/airlock/files/{f['id']}/preview").status_code == 409
        checker = Session(browser, base, artifacts)
        _login(checker, "checker")
        checker.go(f"/airlock/requests/{req['id']}")
        assert checker.page.locator("img.airlock-image").count() == 0
        assert checker.page.locator("svg script, foreignObject").count() == 0
        checker.page.wait_for_timeout(300)
        assert checker.page.title() != "pwned"
        checker.close()
    assert listener.hits == [], listener.hits


def test_regenerated_svg_carries_nothing_active() -> None:
    """The renderer on its own (the second layer): whatever got past the checks is redrawn
    through an allow-list, so the served image has no script, no handler, no reference out."""
    for name, body in hostile_svgs("http://127.0.0.1:9").items():
        try:
            out = svg_render.render_svg(body.encode(), Limits()).regenerated.decode()
        except svg_render.Refused:
            continue
        lowered = out.replace('xmlns="http://www.w3.org/2000/svg"', "").lower()  # the namespace, not a fetch
        for bad in (
            "<script",
            "onload",
            "foreignobject",
            "iframe",
            "href",
            "http:",
            "file:",
            "@import",
            "url(h",
        ):
            assert bad not in lowered, (name, bad, out)


def test_raw_hostile_bytes_with_the_preview_headers_run_nothing(
    site: tuple[World, str], listener: _Listener, browser: Any, artifacts: Path
) -> None:
    """The third layer: serve the raw attack files with exactly the headers of the preview
    route and open them in Chromium, as an <img> on a lab page and as a top-level document."""
    world, base = site
    files = {n: (b.encode(), "image/svg+xml") for n, b in hostile_svgs(listener.url).items()}
    files["polyglot.png"] = (polyglot_png(listener.url), "image/png")
    checker = Session(browser, base, artifacts)
    _login(checker, "checker")
    for name, (data, media) in files.items():
        headers = dict(
            _file_response(
                SimpleNamespace(data=data, media_type=media, name=name, sha256="0"), inline=True
            ).headers
        )
        assert (
            "sandbox" in headers["content-security-policy"]
            and "default-src 'none'" in headers["content-security-policy"]
        )
        headers["x-content-type-options"] = "nosniff"  # added to every response by the app

        def serve(route: Any, _request: Any, data: bytes = data, headers: dict[str, str] = headers) -> None:
            route.fulfill(status=200, body=data, headers=headers)

        url = f"{base}/airlock/files/9{len(name)}/preview"
        checker.page.route(url, serve)
        checker.page.goto(url)  # top level: the CSP sandbox forbids scripts and loads
        checker.page.wait_for_timeout(400)
        assert checker.page.title() != "pwned"
        checker.go("/airlock")  # a lab page, the attack as an <img> (how the request page shows it)
        checker.page.evaluate(
            "u => { const i = document.createElement('img'); i.src = u; i.id = 'probe';"
            " document.body.appendChild(i); }",
            url,
        )
        checker.page.wait_for_timeout(400)
        checker.page.unroute(url)
    checker.shot("attack-images-raw-preview-headers")
    blocked = " ".join(checker.problems)
    assert (
        "Blocked script execution" in blocked and "violates the following Content Security Policy" in blocked
    )
    # what Chromium reports are exactly these refusals (scripts, frames, images, styles, file://)
    checker.close("Blocked script execution", "Content Security Policy", "Not allowed to load local resource")
    assert listener.hits == [], listener.hits


def test_polyglot_png_leaves_as_pixels_only(site: tuple[World, str], listener: _Listener) -> None:
    world, _base = site
    req = _request(world, {"chart.png": polyglot_png(listener.url)})
    if req["state"] == "under_review":  # what the checker is served is a fresh encoding
        served = world.client("checker").get(f"/api/airlock/files/{req['files'][0]['id']}/preview")
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"
        assert b"<html" not in served.content and b"fetch(" not in served.content
        assert served.headers["x-content-type-options"] == "nosniff"
    else:
        assert req["state"] == "returned"
    assert listener.hits == []


def test_pixel_bomb_is_refused_in_bounded_time(site: tuple[World, str]) -> None:
    world, _base = site
    started = time.monotonic()
    req = _request(world, {"bomb.png": pixel_bomb()})
    took = time.monotonic() - started
    assert req["state"] == "returned" and took < 30, (req["state"], took)
    assert world.client("checker").get("/api/airlock/requests?scope=queue").status_code == 200  # still up
