"""Delivery beyond the UI: e-mail over SMTP and a signed webhook, from the outbox, at least once.

Never inside a request: a slow mail server must not hold a clerk's click.  ``emit`` only writes
rows; this service, elected to run in one process across servers, does two things each pass:

1. **dispatch**: each new notification becomes one ``notification_deliveries`` row per channel
   and recipient (an e-mail to every recipient with an address, one webhook message), each with
   an idempotency key derived from the notification, the channel and the recipient; the
   notification is marked dispatched in the same transaction, so a crash repeats nothing or all.
2. **send**: due deliveries are sent outside any transaction, then marked ``sent``, or retried
   with exponential backoff until ``notify_max_attempts`` (then ``failed``, with the error).

A crash between sending and marking sends the message again with the *same* idempotency key
(e-mail ``Message-ID`` and ``X-Countylab-Idempotency-Key``; the webhook's header and ``id``
field), so the receiver can drop the duplicate: at-least-once, never lost.

The webhook body is JSON; ``X-Countylab-Signature: sha256=<hex>`` is HMAC-SHA256 over
``<timestamp>.<body>`` with the secret from ``notify_webhook_secret_file``, and the timestamp is
sent in ``X-Countylab-Timestamp`` so a receiver can refuse replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.config import Settings
from countylab.notify.messages import beijing, describe
from countylab.periodic import Periodic
from countylab.storage.models import User, utcnow
from countylab.storage.notify_models import (
    Notification,
    NotificationDelivery,
    NotificationRecipient,
    NotifyContact,
)

log = logging.getLogger(__name__)

Tx = Callable[[], AbstractContextManager[Session]]
BATCH = 100
MAX_BACKOFF_S = 3600.0


@dataclass(frozen=True)
class Outgoing:
    """A delivery as read before sending (no ORM object crosses the network call)."""

    id: int
    channel: str
    address: str
    key: str
    attempts: int
    lang: str
    notification: dict[str, Any]


class Delivery(Periodic):
    """The elected delivery service (see the module docstring)."""

    def __init__(self, tx: Tx, settings: Settings, *, backoff_s: float = 5.0) -> None:
        super().__init__()
        self.tx, self.settings, self.backoff_s = tx, settings, backoff_s

    thread_name = "countylab-notify"

    def interval_s_now(self) -> float:
        return self.settings.notify_interval_s

    @property
    def email_on(self) -> bool:
        return bool(self.settings.notify_smtp_host)

    @property
    def webhook_on(self) -> bool:
        return bool(self.settings.notify_webhook_url)

    # -- outbox -> deliveries ------------------------------------------------------------------
    def dispatch(self) -> int:
        """Turn new notifications into deliveries; returns how many notifications were handled."""
        with self.tx() as s:
            new = list(
                s.execute(
                    select(Notification)
                    .where(Notification.dispatched.is_(False))
                    .order_by(Notification.id)
                    .limit(BATCH)
                    .with_for_update()
                ).scalars()
            )
            for n in new:
                if self.email_on:
                    rows = s.execute(
                        select(NotifyContact)
                        .join(NotificationRecipient, NotificationRecipient.user_id == NotifyContact.user_id)
                        .where(
                            NotificationRecipient.notification_id == n.id,
                            NotifyContact.email_enabled.is_(True),
                            NotifyContact.email != "",
                        )
                    ).scalars()
                    for c in rows:
                        s.add(self._row(n.id, "email", c.user_id, c.email))
                if self.webhook_on:
                    s.add(self._row(n.id, "webhook", None, self.settings.notify_webhook_url))
                n.dispatched = True
            return len(new)

    @staticmethod
    def _row(notification_id: int, channel: str, user_id: int | None, address: str) -> NotificationDelivery:
        key = f"countylab-n{notification_id}-{channel}-{user_id if user_id is not None else 'all'}"
        return NotificationDelivery(
            notification_id=notification_id,
            channel=channel,
            user_id=user_id,
            address=address[:300],
            idempotency_key=key,
            status="pending",
            attempts=0,
            next_attempt_at=utcnow(),
            last_error="",
        )

    # -- deliveries -> the world ---------------------------------------------------------------
    def due(self, now: datetime | None = None) -> list[Outgoing]:
        now = now or utcnow()
        with self.tx() as s:
            rows = list(
                s.execute(
                    select(NotificationDelivery)
                    .where(
                        NotificationDelivery.status == "pending", NotificationDelivery.next_attempt_at <= now
                    )
                    .order_by(NotificationDelivery.id)
                    .limit(BATCH)
                ).scalars()
            )
            out = []
            for d in rows:
                n = s.get(Notification, d.notification_id)
                if n is None:
                    continue
                lang = "zh-CN"
                if d.user_id is not None:
                    user = s.get(User, d.user_id)
                    lang = user.lang if user is not None else lang
                out.append(
                    Outgoing(d.id, d.channel, d.address, d.idempotency_key, d.attempts, lang, _snapshot(s, n))
                )
            return out

    def send_due(self) -> tuple[int, int]:
        """Send every due delivery; returns (sent, failed attempts)."""
        sent = failed = 0
        for item in self.due():
            try:
                if item.channel == "email":
                    self.send_email(item)
                else:
                    self.send_webhook(item)
            except Exception as exc:  # noqa: BLE001 - any failure is a retry, recorded with its reason
                self._failed(item, f"{type(exc).__name__}: {exc}"[:2000])
                failed += 1
            else:
                self._sent(item)
                sent += 1
        return sent, failed

    def _sent(self, item: Outgoing) -> None:
        with self.tx() as s:
            d = s.get(NotificationDelivery, item.id)
            if d is not None:
                d.status, d.sent_at, d.attempts, d.last_error = "sent", utcnow(), item.attempts + 1, ""

    def _failed(self, item: Outgoing, error: str) -> None:
        attempts = item.attempts + 1
        with self.tx() as s:
            d = s.get(NotificationDelivery, item.id)
            if d is None:
                return
            d.attempts, d.last_error = attempts, error
            if attempts >= self.settings.notify_max_attempts:
                d.status = "failed"
                log.warning("notification delivery %s given up after %d attempts: %s", d.id, attempts, error)
            else:
                wait = min(self.backoff_s * 2 ** (attempts - 1), MAX_BACKOFF_S)
                d.next_attempt_at = utcnow() + timedelta(seconds=wait)

    def _url(self, link: str) -> str:
        base = self.settings.notify_public_url.rstrip("/")
        return f"{base}{link}" if base and link else link

    def send_email(self, item: Outgoing) -> None:
        st = self.settings
        n = item.notification
        text = describe(n["kind"], n["facts"], item.lang)
        msg = EmailMessage()
        msg["Subject"] = f"[{st.county_name}] {text}"[:200]
        msg["From"] = st.notify_smtp_from
        msg["To"] = item.address
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = f"<{item.key}@countylab>"
        msg["X-Countylab-Idempotency-Key"] = item.key
        zh = item.lang != "en"
        lines = [
            text,
            "",
            (f"时间：{beijing(n['at'])}（北京时间）" if zh else f"Time: {beijing(n['at'])} (Beijing)"),
        ]
        if n["link"]:
            lines.append(("查看：" if zh else "Open: ") + self._url(n["link"]))
        lines += ["", "— countylab · 数据可用不可见" if zh else "— countylab"]
        msg.set_content("\n".join(lines))
        password = st.notify_smtp_password_file.read_text().strip() if st.notify_smtp_password_file else ""
        if st.notify_smtp_security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                st.notify_smtp_host, st.notify_smtp_port, timeout=30, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(st.notify_smtp_host, st.notify_smtp_port, timeout=30)
        with smtp:
            if st.notify_smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if st.notify_smtp_user:
                smtp.login(st.notify_smtp_user, password)
            smtp.send_message(msg)

    def webhook_body(self, item: Outgoing) -> bytes:
        n = item.notification
        body = {
            "id": item.key,
            "kind": n["kind"],
            "target": n["target"],
            "link": self._url(n["link"]),
            "text": {
                "zh-CN": describe(n["kind"], n["facts"], "zh-CN"),
                "en": describe(n["kind"], n["facts"], "en"),
            },
            "facts": n["facts"],
            "created_at": n["at"].isoformat(),
            "recipients": n["recipients"],
        }
        return json.dumps(body, ensure_ascii=False, sort_keys=True).encode()

    def send_webhook(self, item: Outgoing) -> None:
        st = self.settings
        if st.notify_webhook_secret_file is None:
            raise RuntimeError("notify_webhook_secret_file is not set: messages are never sent unsigned")
        secret = st.notify_webhook_secret_file.read_bytes().strip()
        body = self.webhook_body(item)
        stamp = str(int(time.time()))
        signature = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's setting
            item.address,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "X-Countylab-Timestamp": stamp,
                "X-Countylab-Signature": f"sha256={signature}",
                "X-Countylab-Idempotency-Key": item.key,
            },
        )
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            if not 200 <= response.status < 300:
                raise RuntimeError(f"webhook answered HTTP {response.status}")

    # -- the service -----------------------------------------------------------------------------
    def run_once(self) -> tuple[int, int]:
        self.dispatch()
        return self.send_due()


def signature_ok(secret: bytes, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver checks (used by the tests, and documented for the messaging platform)."""
    expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def _snapshot(s: Session, n: Notification) -> dict[str, Any]:
    names = s.execute(
        select(User.username)
        .join(NotificationRecipient, NotificationRecipient.user_id == User.id)
        .where(NotificationRecipient.notification_id == n.id)
        .order_by(User.username)
    ).scalars()
    return {
        "kind": n.kind,
        "target": n.target,
        "link": n.link,
        "facts": dict(n.facts or {}),
        "at": n.created_at if n.created_at.tzinfo else n.created_at.replace(tzinfo=utcnow().tzinfo),
        "recipients": list(names),
    }
