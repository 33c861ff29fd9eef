"""Meta-test examples for notifications: each user marks their own notifications read and sets
their own e-mail address (open to every logged-in user; someone else's notification is 404)."""

from __future__ import annotations

from typing import Any

from countylab import notify
from tests.meta.example import Example

EXAMPLES: dict[tuple[str, str], Any] = {
    ("POST", "/api/notifications/{notification_id}/read"): Example("dev", open_to_all=True),
    ("POST", "/api/notifications/read-all"): Example("dev", open_to_all=True),
    ("PUT", "/api/me/notify-contact"): Example("dev", {"email": "dev@county.gov.cn"}, open_to_all=True),
    ("POST", "/notifications/{notification_id}/read"): Example("dev", {}, open_to_all=True),
    ("POST", "/notifications/read-all"): Example("dev", {}, open_to_all=True),
    ("POST", "/notifications/contact"): Example(
        "dev", {"email": "dev@county.gov.cn", "email_enabled": "1"}, open_to_all=True
    ),
}


def fill(world: Any, path: str, actor: str) -> dict[str, str]:
    """A fresh unread notification of the acting user for each call."""
    if "{notification_id}" not in path:
        return {}
    with world.lab.tx() as s:
        n = notify.emit(
            s, "job.succeeded", recipients=notify.to_users(world.users[actor]), target="job:1", name="x"
        )
    return {"notification_id": str(n.id)}
