"""The approval workflow (steps, deadlines, public notice, objections).

Revision ID: 0015
Revises: 0014
Kept in step by hand with ``countylab/storage/workflow_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workflow_configs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False, unique=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "approval_steps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "application_id", sa.Integer, sa.ForeignKey("applications.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("scope", sa.String(40), nullable=False),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=True),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("config_version", sa.Integer, nullable=False),
        sa.Column("opened_at", _TS, nullable=True),
        sa.Column("due_at", _TS, nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("decided_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("reminded_at", _TS, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.UniqueConstraint("application_id", "round", "kind", "scope", name="uq_approval_step"),
    )
    op.create_index("ix_approval_steps_open", "approval_steps", ["status", "due_at"])
    op.create_table(
        "approval_experts",
        sa.Column(
            "step_id", sa.Integer, sa.ForeignKey("approval_steps.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("assigned_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("assigned_at", _TS, nullable=False),
        sa.Column("decision", sa.String(20), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("decided_at", _TS, nullable=True),
    )
    op.create_table(
        "public_notices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "application_id", sa.Integer, sa.ForeignKey("applications.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("starts_at", _TS, nullable=False),
        sa.Column("ends_at", _TS, nullable=False),
        sa.Column("closed_at", _TS, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_public_notices_status", "public_notices", ["status", "ends_at"])
    op.create_table(
        "objections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "notice_id", sa.Integer, sa.ForeignKey("public_notices.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("filed_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("filed_at", _TS, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("answered_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("answered_at", _TS, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("objections")
    op.drop_index("ix_public_notices_status", table_name="public_notices")
    op.drop_table("public_notices")
    op.drop_table("approval_experts")
    op.drop_index("ix_approval_steps_open", table_name="approval_steps")
    op.drop_table("approval_steps")
    op.drop_table("workflow_configs")
