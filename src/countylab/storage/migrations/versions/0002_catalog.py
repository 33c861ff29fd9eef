"""Catalog: dataset schema and versions, columns with PII tags and bounds, key sets, lineage,
push idempotency keys, pull connectors and runs, grade changes.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("datasets") as b:
        b.add_column(sa.Column("table_schema", sa.JSON, nullable=True))
        b.add_column(sa.Column("key_columns", sa.JSON, nullable=False, server_default="[]"))
        b.add_column(sa.Column("current_version", sa.Integer, nullable=True))
        b.add_column(sa.Column("row_count", sa.BigInteger, nullable=True))
        b.add_column(sa.Column("data_updated_at", _TS, nullable=True))
        b.add_column(sa.Column("proposed_grade", sa.String(20), nullable=True))
        b.add_column(sa.Column("dp_max_rows_per_unit", sa.Integer, nullable=False, server_default="1"))
        b.add_column(sa.Column("policy_overrides", sa.JSON, nullable=False, server_default="{}"))
        b.add_column(sa.Column("dummy_profile", sa.JSON, nullable=True))
        b.add_column(
            sa.Column("dummy_profile_approved", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table(
        "dataset_columns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("semantic", sa.String(64), nullable=True),
        sa.Column("pii_kind", sa.String(32), nullable=True),
        sa.Column("pii_confidence", sa.Float, nullable=True),
        sa.Column("pii_sample_count", sa.Integer, nullable=True),
        sa.Column("pii_matched_count", sa.Integer, nullable=True),
        sa.Column("sensitive", sa.Boolean, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("lower", sa.Float, nullable=True),
        sa.Column("upper", sa.Float, nullable=True),
        sa.Column("key_set", sa.String(64), nullable=True),
        sa.Column("joinable_to", sa.JSON, nullable=False),
        sa.Column("profile", sa.JSON, nullable=False),
        sa.UniqueConstraint("dataset_id", "name", name="uq_dataset_column"),
    )
    op.create_index("ix_dataset_columns_dataset_id", "dataset_columns", ["dataset_id"])
    op.create_table(
        "key_sets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=True),
        sa.Column("values", sa.JSON, nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_version"),
    )
    op.create_index("ix_dataset_versions_dataset_id", "dataset_versions", ["dataset_id"])
    op.create_table(
        "push_keys",
        sa.Column(
            "dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "lineage",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("via", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("parent_id", "child_id", name="uq_lineage"),
    )
    op.create_table(
        "connectors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("dsn", sa.Text, nullable=False),
        sa.Column("source_table", sa.String(200), nullable=False),
        sa.Column("cursor_column", sa.String(128), nullable=False),
        sa.Column("key_columns", sa.JSON, nullable=False),
        sa.Column("interval_s", sa.Integer, nullable=False),
        sa.Column("last_cursor", sa.Text, nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("next_run_at", _TS, nullable=True),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_connectors_dataset_id", "connectors", ["dataset_id"])
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "connector_id", sa.Integer, sa.ForeignKey("connectors.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=False),
    )
    op.create_index("ix_sync_runs_connector_id", "sync_runs", ["connector_id"])
    op.create_table(
        "grade_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("from_grade", sa.String(20), nullable=True),
        sa.Column("to_grade", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("by_user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_grade_changes_dataset_id", "grade_changes", ["dataset_id"])


def downgrade() -> None:
    for table in (
        "grade_changes",
        "sync_runs",
        "connectors",
        "lineage",
        "push_keys",
        "dataset_versions",
        "key_sets",
        "dataset_columns",
    ):
        op.drop_table(table)
    with op.batch_alter_table("datasets") as b:
        for col in (
            "dummy_profile_approved",
            "dummy_profile",
            "policy_overrides",
            "dp_max_rows_per_unit",
            "proposed_grade",
            "data_updated_at",
            "row_count",
            "current_version",
            "key_columns",
            "table_schema",
        ):
            b.drop_column(col)
