"""The device authorization grant: device codes

Revision ID: 0008
Revises: 0007

Additive: a new table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "device_codes",
        sa.Column("device_code_hash", sa.String(length=64), primary_key=True),
        sa.Column("user_code_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column(
            "tenant_id",
            sa.String(length=36),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("client_app_id", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "user_id",
            sa.String(length=36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("authenticated_at", _TS, nullable=True),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("polled_at", _TS, nullable=True),
    )
    op.create_index("ix_device_codes_user_id", "device_codes", ["user_id"])
    op.create_index("ix_device_codes_expires_at", "device_codes", ["expires_at"])


def downgrade() -> None:
    op.drop_table("device_codes")
