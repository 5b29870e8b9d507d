"""Index for patient-name prefix searches

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_dicom_studies_patient_name",
        "dicom_studies",
        ["patient_name"],
        postgresql_ops={"patient_name": "text_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_dicom_studies_patient_name", table_name="dicom_studies")
