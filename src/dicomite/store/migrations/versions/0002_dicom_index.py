"""DICOM index: studies, series, instances and the change feed

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dicom_studies",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("patient_name", sa.String(length=324), nullable=True),
        sa.Column("patient_name_words", sa.String(length=400), nullable=True),
        sa.Column("patient_birth_date", sa.String(length=8), nullable=True),
        sa.Column("accession_number", sa.String(length=64), nullable=True),
        sa.Column("referring_physician_name", sa.String(length=324), nullable=True),
        sa.Column("referring_physician_name_words", sa.String(length=400), nullable=True),
        sa.Column("study_date", sa.String(length=8), nullable=True),
        sa.Column("study_description", sa.String(length=256), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("study_uid"),
    )
    with op.batch_alter_table("dicom_studies") as batch:
        batch.create_index("ix_dicom_studies_patient_id", ["patient_id"])
        batch.create_index("ix_dicom_studies_accession_number", ["accession_number"])
        batch.create_index("ix_dicom_studies_study_date", ["study_date"])
    op.create_table(
        "dicom_series",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_pk", sa.Integer(), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=True),
        sa.Column("performed_procedure_step_start_date", sa.String(length=8), nullable=True),
        sa.Column("manufacturer_model_name", sa.String(length=64), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["study_pk"], ["dicom_studies.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("study_pk", "series_uid"),
    )
    with op.batch_alter_table("dicom_series") as batch:
        batch.create_index("ix_dicom_series_series_uid", ["series_uid"])
        batch.create_index("ix_dicom_series_modality", ["modality"])
    op.create_table(
        "dicom_instances",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_pk", sa.Integer(), nullable=False),
        sa.Column("series_pk", sa.Integer(), nullable=False),
        sa.Column("sop_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("transfer_syntax_uid", sa.String(length=64), nullable=False),
        sa.Column("number_of_frames", sa.Integer(), nullable=False),
        sa.Column("blob_key", sa.String(length=256), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["study_pk"], ["dicom_studies.pk"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["series_pk"], ["dicom_series.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("series_pk", "sop_uid"),
    )
    with op.batch_alter_table("dicom_instances") as batch:
        batch.create_index("ix_dicom_instances_study_pk", ["study_pk"])
        batch.create_index("ix_dicom_instances_sop_uid", ["sop_uid"])
    op.create_table(
        "dicom_changes",
        sa.Column("sequence", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_uid", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("sequence"),
    )
    with op.batch_alter_table("dicom_changes") as batch:
        batch.create_index("ix_dicom_changes_timestamp", ["timestamp"])
        batch.create_index("ix_dicom_changes_sop_uid", ["sop_uid"])


def downgrade() -> None:
    op.drop_table("dicom_changes")
    op.drop_table("dicom_instances")
    op.drop_table("dicom_series")
    op.drop_table("dicom_studies")
