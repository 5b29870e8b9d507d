"""ModalitiesInStudy kept on each study row

Revision ID: 0013
Revises: 0012

A study search returned each study's modalities through a subquery over its series, run for
every matching study before the page was cut; the index writer now keeps them on the study.
Existing studies get theirs from their series here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dicomite.store.functions import DistinctJoined

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STUDIES = sa.table("dicom_studies", sa.column("pk", sa.Integer), sa.column("modalities", sa.Text))
_SERIES = sa.table("dicom_series", sa.column("study_pk", sa.Integer), sa.column("modality"))


def upgrade() -> None:
    op.add_column("dicom_studies", sa.Column("modalities", sa.Text(), nullable=True))
    joined = (
        sa.select(DistinctJoined(_SERIES.c.modality))
        .where(_SERIES.c.study_pk == _STUDIES.c.pk)
        .scalar_subquery()
    )
    op.execute(sa.update(_STUDIES).values(modalities=joined))


def downgrade() -> None:
    op.drop_column("dicom_studies", "modalities")
