"""Application platforms: SPA and public-client redirect URIs, web logout URL and implicit
grant settings, isFallbackPublicClient

Revision ID: 0006
Revises: 0005

Additive: existing applications get Graph's defaults (no redirect URIs, no logout URL, implicit
grant off, not a fallback public client); ``redirect_uris`` stays web's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The server defaults fill existing rows; the application always writes these columns itself.
_COLUMNS = (
    ("spa_redirect_uris", sa.JSON(), "[]", False),
    ("public_client_redirect_uris", sa.JSON(), "[]", False),
    ("logout_url", sa.String(length=256), None, True),
    ("enable_access_token_issuance", sa.Boolean(), sa.false(), False),
    ("enable_id_token_issuance", sa.Boolean(), sa.false(), False),
    ("is_fallback_public_client", sa.Boolean(), sa.false(), False),
)


def upgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        for name, kind, default, nullable in _COLUMNS:
            batch.add_column(sa.Column(name, kind, server_default=default, nullable=nullable))


def downgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        for name, *_ in reversed(_COLUMNS):
            batch.drop_column(name)
