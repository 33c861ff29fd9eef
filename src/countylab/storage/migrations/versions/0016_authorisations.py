"""Agreements, signatures and authorisations.

Revision ID: 0016
Revises: 0015
Kept in step by hand with ``countylab/storage/authorisation_models.py`` (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agreements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "application_id", sa.Integer, sa.ForeignKey("applications.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("terms", sa.JSON, nullable=False),
        sa.Column("extra_clauses", sa.Text, nullable=False),
        sa.Column("pdf", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("drafted_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("drafted_at", _TS, nullable=False),
        sa.Column("completed_at", _TS, nullable=True),
        sa.UniqueConstraint("application_id", "version", name="uq_agreement_version"),
    )
    op.create_table(
        "agreement_signatures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "agreement_id", sa.Integer, sa.ForeignKey("agreements.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("party", sa.String(20), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("signed_at", _TS, nullable=False),
        sa.UniqueConstraint("agreement_id", "party", name="uq_agreement_party"),
    )
    op.create_table(
        "agreement_attachments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "agreement_id", sa.Integer, sa.ForeignKey("agreements.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(60), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("uploaded_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("uploaded_at", _TS, nullable=False),
    )
    op.create_table(
        "authorisations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "application_id", sa.Integer, sa.ForeignKey("applications.id"), nullable=False, unique=True
        ),
        sa.Column("latest_application_id", sa.Integer, sa.ForeignKey("applications.id"), nullable=False),
        sa.Column("agreement_id", sa.Integer, sa.ForeignKey("agreements.id"), nullable=False),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False, unique=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
        sa.Column("scenario_id", sa.Integer, sa.ForeignKey("scenarios.id"), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("starts_on", sa.Date, nullable=False),
        sa.Column("ends_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=False),
        sa.Column("status_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_authorisations_status", "authorisations", ["status", "ends_on"])
    op.create_table(
        "authorisation_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "authorisation_id",
            sa.Integer,
            sa.ForeignKey("authorisations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_authorisation_events_at", "authorisation_events", ["at"])
    op.create_table(
        "authorisation_reminders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "authorisation_id",
            sa.Integer,
            sa.ForeignKey("authorisations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("ends_on", sa.Date, nullable=False),
        sa.Column("days_ahead", sa.Integer, nullable=False),
        sa.Column("sent_at", _TS, nullable=False),
        sa.UniqueConstraint("authorisation_id", "ends_on", "days_ahead", name="uq_authorisation_reminder"),
    )
    op.create_table(
        "grant_terms",
        sa.Column("grant_id", sa.Integer, sa.ForeignKey("grants.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("channels", sa.JSON, nullable=True),
        sa.Column("columns", sa.JSON, nullable=True),
        sa.Column(
            "authorisation_id",
            sa.Integer,
            sa.ForeignKey("authorisations.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("ends_on", sa.Date, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("dataset_id", sa.Integer, nullable=False),
        sa.Column("granted_by", sa.Integer, nullable=True),
        sa.Column("granted_at", _TS, nullable=False),
    )
    op.create_index("ix_grant_terms_authorisation_id", "grant_terms", ["authorisation_id"])


def downgrade() -> None:
    op.drop_index("ix_grant_terms_authorisation_id", table_name="grant_terms")
    op.drop_table("grant_terms")
    op.drop_table("authorisation_reminders")
    op.drop_index("ix_authorisation_events_at", table_name="authorisation_events")
    op.drop_table("authorisation_events")
    op.drop_index("ix_authorisations_status", table_name="authorisations")
    op.drop_table("authorisations")
    op.drop_table("agreement_attachments")
    op.drop_table("agreement_signatures")
    op.drop_table("agreements")
