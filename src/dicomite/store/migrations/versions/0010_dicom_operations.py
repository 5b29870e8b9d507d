"""DICOM data management: durable long-running operations, extended query tags, their values
per level and their indexing errors

Revision ID: 0010
Revises: 0009

Additive: an index without extended query tags searches as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_LEVELS = (("study", "dicom_studies"), ("series", "dicom_series"), ("instance", "dicom_instances"))


def upgrade() -> None:
    state = op.create_table(
        "dicom_index_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tags_version", sa.Integer(), nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "tags_version": 0}])
    op.create_table(
        "dicom_extended_query_tags",
        sa.Column("key", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("path", sa.String(length=8), nullable=False, unique=True),
        sa.Column("vr", sa.String(length=2), nullable=False),
        sa.Column("private_creator", sa.String(length=64), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("query_status", sa.String(length=8), nullable=False),
        sa.Column("operation_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    for level, parent in _LEVELS:
        _create_values(f"dicom_{level}_tag_values", parent)
    op.create_table(
        "dicom_tag_errors",
        sa.Column(
            "tag_key",
            sa.Integer(),
            sa.ForeignKey("dicom_extended_query_tags.key", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "instance_pk",
            sa.Integer(),
            sa.ForeignKey("dicom_instances.pk", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("message", sa.String(length=512), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_dicom_tag_errors_instance_pk", "dicom_tag_errors", ["instance_pk"])
    op.create_table(
        "dicom_operations",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("percent_complete", sa.Integer(), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_dicom_operations_status", "dicom_operations", ["status"])


def _create_values(name: str, parent: str) -> None:
    op.create_table(
        name,
        sa.Column(
            "tag_key",
            sa.Integer(),
            sa.ForeignKey("dicom_extended_query_tags.key", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "resource_pk",
            sa.Integer(),
            sa.ForeignKey(f"{parent}.pk", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("text_value", sa.String(length=324), nullable=True),
        sa.Column("words", sa.String(length=400), nullable=True),
        sa.Column("number_value", sa.Float(precision=53), nullable=True),
        sa.Column("element", sa.Text(), nullable=False),
    )
    op.create_index(f"ix_{name}_resource_pk", name, ["resource_pk"])
    op.create_index(f"ix_{name}_text", name, ["tag_key", "text_value"])
    op.create_index(f"ix_{name}_number", name, ["tag_key", "number_value"])


def downgrade() -> None:
    op.drop_table("dicom_operations")
    op.drop_table("dicom_tag_errors")
    for level, _ in reversed(_LEVELS):
        op.drop_table(f"dicom_{level}_tag_values")
    op.drop_table("dicom_extended_query_tags")
    op.drop_table("dicom_index_state")
