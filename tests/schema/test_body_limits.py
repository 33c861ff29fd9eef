"""An oversized request body is a 413 on every unsafe operation, never a 5xx.

Over real HTTP to ``countylab serve`` (small limits: tests/schema/conftest.py), for every
POST/PUT/PATCH/DELETE of the OpenAPI document, with the limit of its route class
(``countylab.web.bodylimit.limit_for``):

* a body *announced* over the limit (``Content-Length``) is refused before a byte is read;
* a *chunked* body with no length is refused once it crosses the limit, wherever the route reads
  it (FastAPI's body parsing, a multipart form, ``request.body()`` of the push route, the job
  submission's ``request.form()``); a route that never reads a body answers as it would anyway.

Raw sockets, because an HTTP client library would not send a lying or endless request.
"""

from __future__ import annotations

import select
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from countylab.web.bodylimit import MIB, limit_for
from tests.schema.conftest import BODY_MB, CODE_MB, UPLOAD_MB, Served

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
CHUNK = 64 * 1024
BOUNDARY = "countylab-schema-test"
MULTIPART_START = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
    "Content-Type: text/csv\r\n\r\n"
)


def _limit(path: str) -> tuple[str, int]:
    return limit_for(path, default=BODY_MB * MIB, upload=UPLOAD_MB * MIB, code=CODE_MB * MIB)


def _status(sock: socket.socket, wait_s: float = 20.0) -> int:
    """The status of the answer (0 if the server closed without one)."""
    data = b""
    deadline = time.monotonic() + wait_s
    while b"\r\n" not in data and time.monotonic() < deadline:
        try:
            part = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            break
        if not part:
            break
        data += part
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


def _head(method: str, path: str, host: str, token: str, ctype: str, framing: str) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {ctype}\r\n{framing}\r\nConnection: close\r\n\r\n"
    ).encode()


def announced(url: str, method: str, path: str, token: str, ctype: str, length: int) -> int:
    """Announce ``length`` bytes and send none: the answer must come without the body."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        sock.sendall(_head(method, path, parts.netloc, token, ctype, f"Content-Length: {length}"))
        return _status(sock)


def chunked(url: str, method: str, path: str, token: str, ctype: str, total: int) -> tuple[int, int]:
    """Stream ``total`` bytes with no length, stopping as soon as an answer is there.

    Returns the status and how many bytes were sent (into socket buffers) before it came."""
    parts = urlsplit(url)
    sent = 0
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        sock.sendall(_head(method, path, parts.netloc, token, ctype, "Transfer-Encoding: chunked"))
        if ctype.startswith("multipart/"):  # a well-formed start: the parser streams the file part
            start = MULTIPART_START.encode()
            sock.sendall(f"{len(start):x}\r\n".encode() + start + b"\r\n")
            sent += len(start)
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered (or closed) before the whole body
            try:
                sock.sendall(f"{CHUNK:x}\r\n".encode() + b"x" * CHUNK + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += CHUNK
        else:
            time.sleep(0.05)
            if not select.select([sock], [], [], 0)[0]:
                sock.sendall(b"0\r\n\r\n")  # a route that waits for the end gets it
        return _status(sock), sent


def _operations(served: Served) -> list[tuple[str, str, str, bool]]:
    doc = httpx.get(f"{served.url}/api/openapi.json", timeout=30).json()
    found = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if method.upper() not in UNSAFE:
                continue
            content = operation.get("requestBody", {}).get("content", {})
            ctype = next(iter(content), "application/json")
            if ctype.startswith("multipart/"):
                ctype += f"; boundary={BOUNDARY}"  # a body with no boundary is never read
            concrete = path
            while "{" in concrete:
                start, end = concrete.index("{"), concrete.index("}")
                concrete = concrete[:start] + "1" + concrete[end + 1 :]
            found.append((method.upper(), concrete, ctype, bool(content)))
    return found


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_oversized_body_is_413_on_every_unsafe_operation(served: Served) -> None:
    operations = _operations(served)
    assert len(operations) > 40
    wrong = []
    refused_while_streaming = 0
    for method, path, ctype, has_body in operations:
        kind, limit = _limit(path)
        token = served.fresh_token("admin")  # DELETE /api/tokens/1 may have revoked the last one
        status = announced(served.url, method, path, token, ctype, limit + 1)
        if status != 413:
            wrong.append(f"{method} {path} ({kind}) announced {limit + 1} bytes: {status}")
        status, sent = chunked(served.url, method, path, token, ctype, limit + 4 * CHUNK)
        if status == 413:
            refused_while_streaming += 1
        elif has_body or not 200 <= status < 500:
            wrong.append(f"{method} {path} ({kind}) streamed {sent} bytes: {status}")
    assert not wrong, "\n".join(wrong) + "\n--- server log ---\n" + served.log_tail()
    # the routes that read their body by hand (pushed rows, job submissions) are among the 413s
    assert refused_while_streaming >= sum(1 for *_, has_body in operations if has_body) + 2
    assert "Traceback" not in served.log_tail(10_000)
