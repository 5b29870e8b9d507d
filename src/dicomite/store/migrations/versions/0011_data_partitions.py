"""DICOM data partitions: the partition table, ``Microsoft.Default`` as partition 1 holding
every existing study and change feed row, studies unique per partition, and the deployment's
durable partitions switch

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite reflects the unnamed UNIQUE (study_uid) of 0002 without a name: batch mode names it
# by this convention so it can be dropped; PostgreSQL named it itself.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
_POSTGRES_UNIQUE = "dicom_studies_study_uid_key"


def upgrade() -> None:
    partitions = op.create_table(
        "dicom_partitions",
        sa.Column("key", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(length=64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(
        partitions, [{"key": 1, "name": "Microsoft.Default", "created_at": datetime.now(UTC)}]
    )
    if op.get_bind().dialect.name == "postgresql":
        # the explicit key 1 left the sequence behind it
        serial = sa.func.pg_get_serial_sequence("dicom_partitions", "key")
        op.execute(sa.select(sa.func.setval(serial, 1)))
        op.drop_constraint(_POSTGRES_UNIQUE, "dicom_studies", type_="unique")
    with op.batch_alter_table("dicom_studies", naming_convention=_SQLITE_NAMES) as batch:
        if op.get_bind().dialect.name == "sqlite":
            batch.drop_constraint("uq_dicom_studies_study_uid", type_="unique")
        batch.add_column(
            sa.Column("partition_key", sa.Integer(), nullable=False, server_default="1")
        )
        batch.create_foreign_key(
            "fk_dicom_studies_partition", "dicom_partitions", ["partition_key"], ["key"]
        )
        batch.create_unique_constraint(
            "uq_dicom_studies_partition_study", ["partition_key", "study_uid"]
        )
        batch.create_index("ix_dicom_studies_study_uid", ["study_uid"])
    with op.batch_alter_table("dicom_changes") as batch:
        batch.add_column(
            sa.Column("partition_key", sa.Integer(), nullable=False, server_default="1")
        )
    with op.batch_alter_table("dicom_index_state") as batch:
        batch.add_column(
            sa.Column("data_partitions", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("dicom_index_state") as batch:
        batch.drop_column("data_partitions")
    with op.batch_alter_table("dicom_changes") as batch:
        batch.drop_column("partition_key")
    with op.batch_alter_table("dicom_studies") as batch:
        batch.drop_index("ix_dicom_studies_study_uid")
        batch.drop_constraint("uq_dicom_studies_partition_study", type_="unique")
        batch.drop_constraint("fk_dicom_studies_partition", type_="foreignkey")
        batch.drop_column("partition_key")
        batch.create_unique_constraint(_POSTGRES_UNIQUE, ["study_uid"])
    op.drop_table("dicom_partitions")
