"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 04:39:15.231468
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "sign_ins",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("app_id", sa.String(length=128), nullable=True),
        sa.Column("app_display_name", sa.String(length=256), nullable=True),
        sa.Column("service_principal_id", sa.String(length=36), nullable=True),
        sa.Column("resource", sa.String(length=512), nullable=True),
        sa.Column("resource_display_name", sa.String(length=256), nullable=True),
        sa.Column("resource_id", sa.String(length=36), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.String(length=1024), nullable=True),
        sa.Column("credential_type", sa.String(length=32), nullable=True),
        sa.Column("credential_key_id", sa.String(length=36), nullable=True),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sign_ins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_ins_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sign_ins_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activates_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("kid"),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("directory_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain"),
    )
    op.create_table(
        "used_assertions",
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("resource", sa.String(length=512), nullable=False),
        sa.Column("jti", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "resource", "jti"),
    )
    with op.batch_alter_table("used_assertions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_used_assertions_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "applications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("sign_in_audience", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("identifier_uris", sa.JSON(), nullable=False),
        sa.Column("app_roles", sa.JSON(), nullable=False),
        sa.Column("oauth2_permission_scopes", sa.JSON(), nullable=False),
        sa.Column("requested_access_token_version", sa.Integer(), nullable=True),
        sa.Column("required_resource_access", sa.JSON(), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("owner_user_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("app_id"),
    )
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.create_index("ix_applications_tenant", ["tenant_id"], unique=False)

    op.create_table(
        "key_credentials",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("application_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("thumbprint_sha1", sa.String(length=64), nullable=False),
        sa.Column("thumbprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_id"),
    )
    with op.batch_alter_table("key_credentials", schema=None) as batch_op:
        batch_op.create_index("ix_key_credentials_app", ["application_id"], unique=False)

    op.create_table(
        "password_credentials",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("application_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        sa.Column("hint", sa.String(length=3), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_id"),
    )
    with op.batch_alter_table("password_credentials", schema=None) as batch_op:
        batch_op.create_index("ix_password_credentials_app", ["application_id"], unique=False)

    op.create_table(
        "service_principals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("application_id", sa.String(length=36), nullable=True),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("app_roles", sa.JSON(), nullable=False),
        sa.Column("oauth2_permission_scopes", sa.JSON(), nullable=False),
        sa.Column("requested_access_token_version", sa.Integer(), nullable=True),
        sa.Column("is_builtin", sa.Boolean(), nullable=False),
        sa.Column("account_enabled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "app_id"),
    )
    op.create_table(
        "app_role_assignments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("principal_id", sa.String(length=36), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("app_role_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["principal_id"], ["service_principals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["resource_id"], ["service_principals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("principal_id", "resource_id", "app_role_id"),
    )
    with op.batch_alter_table("app_role_assignments", schema=None) as batch_op:
        batch_op.create_index("ix_app_role_assignments_resource", ["resource_id"], unique=False)

    op.create_table(
        "oauth2_permission_grants",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("consent_type", sa.String(length=32), nullable=False),
        sa.Column("principal_id", sa.String(length=36), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["service_principals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["resource_id"], ["service_principals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "resource_id", "consent_type", "principal_id"),
    )
    op.create_table(
        "service_principal_names",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("service_principal_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_principal_id"], ["service_principals.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "name"),
    )


def downgrade() -> None:

    op.drop_table("service_principal_names")
    op.drop_table("oauth2_permission_grants")
    with op.batch_alter_table("app_role_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_app_role_assignments_resource")

    op.drop_table("app_role_assignments")
    op.drop_table("service_principals")
    with op.batch_alter_table("password_credentials", schema=None) as batch_op:
        batch_op.drop_index("ix_password_credentials_app")

    op.drop_table("password_credentials")
    with op.batch_alter_table("key_credentials", schema=None) as batch_op:
        batch_op.drop_index("ix_key_credentials_app")

    op.drop_table("key_credentials")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index("ix_applications_tenant")

    op.drop_table("applications")
    with op.batch_alter_table("used_assertions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_used_assertions_expires_at"))

    op.drop_table("used_assertions")
    op.drop_table("tenants")
    op.drop_table("signing_keys")
    with op.batch_alter_table("sign_ins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_ins_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_sign_ins_created_at"))

    op.drop_table("sign_ins")
