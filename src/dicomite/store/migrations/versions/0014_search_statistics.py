"""Finer planner statistics on the study columns QIDO searches by range or prefix (PostgreSQL)

Revision ID: 0014
Revises: 0013

A study search orders by ``pk`` and stops at its page (``LIMIT``). With PostgreSQL's default of
100 histogram buckets over thousands of study dates, the planner misjudged how many studies a
one-week range or a name prefix matches, and at a million instances some such searches walked
the primary key backwards, filtering tens of thousands of rows (370-490 ms) instead of reading
the column's index and sorting the matches (1.4-2.6 ms). A target of 1000 keeps its estimates
close (bench/README.md, ``--scale``). SQLite plans without such statistics: nothing to do.
"""

from collections.abc import Sequence

from alembic import op

from dicomite.store.statistics import DEFAULT_TARGET, Analyze, ColumnStatistics

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TARGET = 1000
SEARCHED_BY_RANGE_OR_PREFIX = (
    "study_date",
    "patient_name",
    "patient_name_words",
    "referring_physician_name",
    "referring_physician_name_words",
)


def _set(target: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in SEARCHED_BY_RANGE_OR_PREFIX:
        op.execute(ColumnStatistics("dicom_studies", column, target))
    op.execute(Analyze("dicom_studies"))


def upgrade() -> None:
    _set(TARGET)


def downgrade() -> None:
    _set(DEFAULT_TARGET)
