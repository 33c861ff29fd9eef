"""ORM tables of notifications (通知) and their delivery, created by migration ``0012_notifications``.

* ``notifications``: one row per event (release submitted, job finished…), written by
  :func:`countylab.notify.emit` inside the transaction of the action itself, so it commits or
  rolls back with it.  ``dispatched`` is the outbox flag: the delivery service turns a new row
  into ``notification_deliveries`` (e-mail, webhook) once, then sets it.
* ``notification_recipients``: who receives it and whether they have read it; the header's
  unread count is one indexed count over ``(user_id, read_at)``.
* ``notification_deliveries``: one message per channel and recipient, with its idempotency key
  (sent again after a crash, never lost: at-least-once), attempts and the next retry.
* ``notify_contacts``: a user's e-mail address and whether they want e-mails.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base, utcnow


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_dispatched", "dispatched", "id"),
        Index("ix_notifications_target", "target", "kind"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))  # release.submitted, job.finished, …
    target: Mapped[str] = mapped_column(String(200), default="")  # release:12, job:3, dataset:4
    link: Mapped[str] = mapped_column(String(300), default="")  # the page the reader opens
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # words of the message
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dispatched: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NotificationRecipient(Base):
    __tablename__ = "notification_recipients"
    __table_args__ = (
        UniqueConstraint("notification_id", "user_id", name="uq_notification_recipient"),
        Index("ix_notification_recipients_unread", "user_id", "read_at"),
        Index("ix_notification_recipients_user", "user_id", "notification_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class NotificationDelivery(Base):
    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(10))  # email | webhook
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # e-mail: whose; webhook: none
    address: Mapped[str] = mapped_column(String(300), default="")
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class NotifyContact(Base):
    __tablename__ = "notify_contacts"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), default="")
    email_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
