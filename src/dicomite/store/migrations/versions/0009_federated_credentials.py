"""Federated identity credentials of applications

Revision ID: 0009
Revises: 0008

Additive: a new table; existing applications have none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "federated_identity_credentials",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column(
            "application_id",
            sa.String(length=36),
            sa.ForeignKey("applications.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("issuer", sa.String(length=600), nullable=False),
        sa.Column("subject", sa.String(length=600), nullable=False),
        sa.Column("audiences", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=600), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_federated_identity_credentials_app",
        "federated_identity_credentials",
        ["application_id"],
    )


def downgrade() -> None:
    op.drop_table("federated_identity_credentials")
