"""Bulk update: the original version of each updated DICOM instance

Revision ID: 0012
Revises: 0011

Additive: an instance without a row here was never updated.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dicom_instance_originals",
        sa.Column(
            "instance_pk",
            sa.Integer(),
            sa.ForeignKey("dicom_instances.pk", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("blob_key", sa.String(length=256), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("metadata_json", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_dicom_instance_originals_blob_key", "dicom_instance_originals", ["blob_key"]
    )


def downgrade() -> None:
    op.drop_table("dicom_instance_originals")
