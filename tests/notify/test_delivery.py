"""E-mail over SMTP (a real aiosmtpd server) and the signed webhook (a real HTTP server): sent
from the outbox by the delivery service, retried with backoff, at-least-once with a stable key."""

from __future__ import annotations

import email
import json
import socket
import threading
import time
from collections.abc import Iterator
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from countylab import notify
from countylab.identity import service as ids
from countylab.lab import Lab
from countylab.notify import inbox
from countylab.notify.delivery import Delivery, signature_ok
from countylab.notify.messages import aware
from countylab.storage.models import utcnow
from countylab.storage.notify_models import NotificationDelivery
from tests.support import build_lab, create_user

SECRET = b"county-im-secret"


class Inbox:
    """aiosmtpd handler: keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    with socket.socket() as probe:  # a free port (aiosmtpd's start-up check cannot use port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


class Hook:
    """A real HTTP server standing in for the county messaging platform; fails the first
    ``fail_first`` requests with 503 (to exercise retries)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.received: list[tuple[dict[str, str], bytes]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                code = 503 if len(hook.received) <= hook.fail_first else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/countylab"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook(fail_first=2)
    yield h
    h.close()


def _lab(tmp_path: Path, database_url: str = "", **settings: Any) -> Lab:
    secret = tmp_path / "webhook-secret"
    secret.write_bytes(SECRET + b"\n")
    return build_lab(
        tmp_path,
        database_url,
        notify_webhook_secret_file=secret,
        notify_public_url="https://lab.example.gov.cn",
        **settings,
    )


def _emit(lab: Lab, users: list[int]) -> int:
    with lab.tx() as s:
        return notify.emit(
            s,
            "release.submitted",
            recipients=notify.to_users(*users),
            target="release:7",
            title="养老需求统计",
            project="养老",
        ).id


def _contact(lab: Lab, user_id: int, address: str, enabled: bool = True) -> None:
    with lab.tx() as s:
        inbox.set_contact(
            s, ids.principal_for(s, ids.get_user(s, user_id), "session"), address, enabled=enabled
        )


def _deliveries(lab: Lab) -> list[NotificationDelivery]:
    with lab.read() as s:
        rows = list(s.execute(select(NotificationDelivery).order_by(NotificationDelivery.id)).scalars())
        s.expunge_all()
        return rows


def test_email_reaches_a_real_smtp_server_in_the_readers_language(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    received, port = smtp
    lab = _lab(
        tmp_path,
        notify_smtp_host="127.0.0.1",
        notify_smtp_port=port,
        notify_smtp_security="none",
        notify_smtp_from="countylab@county.gov.cn",
    )
    zh = create_user(lab, "checker", ["checker"])
    en = create_user(lab, "checker_en", ["checker"])
    silent = create_user(lab, "checker_off", ["checker"])
    nobody = create_user(lab, "no_address", ["checker"])
    with lab.tx() as s:
        ids.get_user(s, en).lang = "en"
    _contact(lab, zh, "zhang@county.gov.cn")
    _contact(lab, en, "li@county.gov.cn")
    _contact(lab, silent, "wang@county.gov.cn", enabled=False)
    nid = _emit(lab, [zh, en, silent, nobody])
    service = Delivery(lab.tx, lab.settings)
    assert service.run_once() == (2, 0)
    assert service.run_once() == (0, 0)  # nothing is sent twice once recorded
    by_to = {m["To"]: m for m in received.messages}
    assert set(by_to) == {"zhang@county.gov.cn", "li@county.gov.cn"}
    cn = by_to["zhang@county.gov.cn"]
    assert cn["Subject"] == "[示范县] 出域申请「养老需求统计」待审核（项目：养老）"
    assert "https://lab.example.gov.cn/airlock/requests/7" in cn.get_content()
    assert "北京时间" in cn.get_content()
    assert cn["X-Countylab-Idempotency-Key"] == f"countylab-n{nid}-email-{zh}"
    assert cn["Message-ID"] == f"<countylab-n{nid}-email-{zh}@countylab>"
    assert by_to["li@county.gov.cn"]["Subject"].startswith(
        "[示范县] Release request “养老需求统计” awaits review"
    )
    assert received.envelopes[0][0] == "countylab@county.gov.cn"
    assert {d.status for d in _deliveries(lab)} == {"sent"}


def test_webhook_is_signed_retried_with_backoff_and_keeps_its_key(
    tmp_path: Path, hook: Hook, db_url: str
) -> None:
    """On SQLite and PostgreSQL (the outbox is read with FOR UPDATE there)."""
    lab = _lab(tmp_path, db_url, notify_webhook_url=hook.url, notify_max_attempts=5)
    user = create_user(lab, "checker", ["checker"])
    nid = _emit(lab, [user])
    service = Delivery(lab.tx, lab.settings, backoff_s=0.2)
    assert service.run_once() == (0, 1)  # 503: retried later, not now
    [d] = _deliveries(lab)
    assert d.status == "pending" and d.attempts == 1 and "503" in d.last_error
    assert service.send_due() == (0, 0)  # not yet due: backoff
    time.sleep(0.25)
    before = utcnow()
    assert service.send_due() == (0, 1)  # second 503; the next wait doubles (0.2 s, then 0.4 s)
    [d] = _deliveries(lab)
    wait = (aware(d.next_attempt_at) - before).total_seconds()
    assert 0.35 <= wait < 2 and d.attempts == 2
    time.sleep(0.45)
    assert service.send_due() == (1, 0)
    [d] = _deliveries(lab)
    assert d.status == "sent" and d.attempts == 3
    assert len(hook.received) == 3
    keys = {h["x-countylab-idempotency-key"] for h, _b in hook.received}
    assert keys == {f"countylab-n{nid}-webhook-all"}  # every retry carries the same key
    headers, body = hook.received[-1]
    assert signature_ok(SECRET, headers["x-countylab-timestamp"], body, headers["x-countylab-signature"])
    assert not signature_ok(
        b"wrong", headers["x-countylab-timestamp"], body, headers["x-countylab-signature"]
    )
    message = json.loads(body)
    assert message["id"] == f"countylab-n{nid}-webhook-all"
    assert message["kind"] == "release.submitted" and message["recipients"] == ["checker"]
    assert message["text"]["zh-CN"] == "出域申请「养老需求统计」待审核（项目：养老）"
    assert message["link"] == "https://lab.example.gov.cn/airlock/requests/7"


def test_a_crash_after_sending_sends_again_with_the_same_key(tmp_path: Path, hook: Hook) -> None:
    hook.fail_first = 0
    lab = _lab(tmp_path, notify_webhook_url=hook.url)
    nid = _emit(lab, [create_user(lab, "checker", ["checker"])])
    service = Delivery(lab.tx, lab.settings)
    service.dispatch()
    [item] = service.due()
    service.send_webhook(item)  # sent, then the process dies before recording it
    restarted = Delivery(lab.tx, lab.settings)
    assert restarted.run_once() == (1, 0)
    keys = [h["x-countylab-idempotency-key"] for h, _b in hook.received]
    assert keys == [f"countylab-n{nid}-webhook-all"] * 2  # at-least-once; the receiver drops the repeat


def test_gives_up_after_max_attempts_and_never_sends_unsigned(tmp_path: Path, hook: Hook) -> None:
    lab = build_lab(tmp_path, notify_webhook_url=hook.url, notify_max_attempts=2)  # no secret file
    _emit(lab, [create_user(lab, "checker", ["checker"])])
    service = Delivery(lab.tx, lab.settings, backoff_s=0.01)
    service.run_once()
    time.sleep(0.05)
    service.run_once()
    [d] = _deliveries(lab)
    assert d.status == "failed" and d.attempts == 2 and "secret" in d.last_error
    assert hook.received == []


def test_the_elected_service_delivers_in_the_background(tmp_path: Path, hook: Hook) -> None:
    hook.fail_first = 0
    lab = _lab(tmp_path, notify_webhook_url=hook.url, notify_interval_s=0.05)
    _emit(lab, [create_user(lab, "checker", ["checker"])])
    lab.notify.start()
    try:
        deadline = time.monotonic() + 10
        while not hook.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        lab.notify.stop()
        lab.close()
    assert len(hook.received) == 1
