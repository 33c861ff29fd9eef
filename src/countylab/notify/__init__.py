"""Notifications (通知) and to-do lists (待办): one mechanism for every capability.

Domain code calls :func:`emit` inside its own transaction; the notification is a row of the
metadata database, so it commits or rolls back with the action (the outbox pattern).  The
header's unread count and the notifications page read those rows (:mod:`.inbox`); the delivery
service (:mod:`.delivery`, elected: once across servers) sends them on by e-mail and webhook.
To-do items (:mod:`.todos`) are computed from the live state, not from notifications, so a
to-do disappears the moment the work is done, whoever did it.
"""

from __future__ import annotations

from countylab.notify.events import Recipients, emit, to_project, to_roles, to_users

__all__ = ["Recipients", "emit", "to_project", "to_roles", "to_users"]
