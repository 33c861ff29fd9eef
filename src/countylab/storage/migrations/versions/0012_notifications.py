"""Notifications And To-do Items For Every Role.

Revision ID: 0012
Revises: 0011
Kept in step by hand with ``countylab/storage/notify_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("link", sa.String(300), nullable=False),
        sa.Column("facts", sa.JSON, nullable=False),
        sa.Column("actor_id", sa.Integer, nullable=True),
        sa.Column("dispatched", sa.Boolean, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_notifications_dispatched", "notifications", ["dispatched", "id"])
    op.create_index("ix_notifications_target", "notifications", ["target", "kind"])
    op.create_table(
        "notification_recipients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "notification_id",
            sa.Integer,
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("read_at", _TS, nullable=True),
        sa.UniqueConstraint("notification_id", "user_id", name="uq_notification_recipient"),
    )
    op.create_index("ix_notification_recipients_unread", "notification_recipients", ["user_id", "read_at"])
    op.create_index(
        "ix_notification_recipients_user", "notification_recipients", ["user_id", "notification_id"]
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "notification_id",
            sa.Integer,
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("idempotency_key", sa.String(100), nullable=False, unique=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
    )
    op.create_index(
        "ix_notification_deliveries_due", "notification_deliveries", ["status", "next_attempt_at"]
    )
    op.create_table(
        "notify_contacts",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("email_enabled", sa.Boolean, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notify_contacts")
    op.drop_index("ix_notification_deliveries_due", "notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_index("ix_notification_recipients_user", "notification_recipients")
    op.drop_index("ix_notification_recipients_unread", "notification_recipients")
    op.drop_table("notification_recipients")
    op.drop_index("ix_notifications_target", "notifications")
    op.drop_index("ix_notifications_dispatched", "notifications")
    op.drop_table("notifications")
