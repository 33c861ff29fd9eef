"""Client methods for to-do items (待办), notifications (通知) and who uses a dataset (使用情况).

A mixin of :class:`countylab_client.Client`.  Results are plain dicts and lists, as the API
sends them (``text`` is in the client's language; times are ISO-8601 UTC).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _id(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    return value


class NotifyAPI:
    _send: Callable[..., Any]  # provided by Client

    def todos(self) -> list[dict[str, Any]]:
        """What waits for you, oldest first: ``kind``, ``text``, ``link``, ``since``, ``age``."""
        items: list[dict[str, Any]] = self._send("GET", "/api/todos")["items"]
        return items

    def notifications(
        self, *, unread: bool = False, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Your notifications, newest first (``unread=True``: only those not yet read)."""
        params = {"unread": "true" if unread else "false", "limit": str(limit), "offset": str(offset)}
        items: list[dict[str, Any]] = self._send("GET", "/api/notifications", params=params)["items"]
        return items

    def unread_count(self) -> int:
        """How many of your notifications are unread (the number in the page header)."""
        return int(self._send("GET", "/api/notifications", params={"limit": "1"})["unread"])

    def mark_notification_read(self, notification_id: int, /) -> int:
        """Mark one notification read; returns how many remain unread."""
        nid = _id(notification_id, "notification_id")
        return int(self._send("POST", f"/api/notifications/{nid}/read")["unread"])

    def mark_all_notifications_read(self) -> int:
        """Mark every notification read; returns how many were marked."""
        return int(self._send("POST", "/api/notifications/read-all")["marked"])

    def set_notification_email(self, email: str, *, enabled: bool = True) -> dict[str, Any]:
        """Your e-mail address for notifications (empty: none), and whether to send e-mails."""
        result: dict[str, Any] = self._send(
            "PUT", "/api/me/notify-contact", body={"email": email, "email_enabled": enabled}
        )
        return result

    def dataset_usage(self, dataset_id: int, /) -> dict[str, Any]:
        """Who uses a dataset of your department: ``grants``, ``dp_queries`` (per project and
        month), ``jobs``, ``releases``, ``models`` — aggregates, never query text or contents."""
        did = _id(dataset_id, "dataset_id")
        result: dict[str, Any] = self._send("GET", f"/api/datasets/{did}/usage")
        return result

    def usage(self) -> list[dict[str, Any]]:
        """One summary line per dataset of your department (stewards and admins: every dataset)."""
        items: list[dict[str, Any]] = self._send("GET", "/api/usage")["items"]
        return items
