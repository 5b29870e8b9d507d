"""Tables of the directory, the authorization server and the sign-in log.

Ids are GUID strings, as Microsoft Graph exposes them; timestamps are timezone-aware UTC.
Lists that Graph exposes as JSON arrays (identifierUris, appRoles, …) are JSON columns: they are
read and written whole, never queried by element, except ``identifier_uris`` which is mirrored to
``service_principal_names`` rows so a resource can be found by URI with an index.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

GUID = String(36)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite stores datetimes without an offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(GUID, primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), unique=True)
    display_name: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    # Bumped by every directory write; token issuing caches lookups per version.
    directory_version: Mapped[int] = mapped_column(Integer, default=0)
    # Whether people may consent for themselves to an app's delegated permissions of type
    # "User" (Entra ID's default user consent setting); "Admin" ones always need an admin.
    users_can_consent: Mapped[bool] = mapped_column(Boolean, default=True)


class Application(Base):
    __tablename__ = "applications"
    id: Mapped[str] = mapped_column(GUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    app_id: Mapped[str] = mapped_column(GUID, unique=True)
    display_name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(String(1024))
    sign_in_audience: Mapped[str] = mapped_column(String(64), default="AzureADMyOrg")
    created_at: Mapped[datetime]
    identifier_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    app_roles: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    oauth2_permission_scopes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    requested_access_token_version: Mapped[int | None] = mapped_column(Integer)
    required_resource_access: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Platform configuration (Graph web, spa, publicClient): redirect_uris is web.redirectUris.
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    owner_user_id: Mapped[str | None] = mapped_column(GUID)
    spa_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    public_client_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    logout_url: Mapped[str | None] = mapped_column(String(256))
    enable_access_token_issuance: Mapped[bool] = mapped_column(Boolean, default=False)
    enable_id_token_issuance: Mapped[bool] = mapped_column(Boolean, default=False)
    is_fallback_public_client: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_applications_tenant", "tenant_id"),)


class ServicePrincipal(Base):
    """The instance of an application (or a built-in API) in the tenant.

    Built-in APIs (Graph, DICOM) have a service principal but no application row, as in Entra ID
    where their applications live in Microsoft's own tenant.
    """

    __tablename__ = "service_principals"
    id: Mapped[str] = mapped_column(GUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    app_id: Mapped[str] = mapped_column(GUID)
    application_id: Mapped[str | None] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE")
    )
    display_name: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    app_roles: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    oauth2_permission_scopes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    requested_access_token_version: Mapped[int | None] = mapped_column(Integer)
    is_builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    account_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    __table_args__ = (UniqueConstraint("tenant_id", "app_id"),)


class ServicePrincipalName(Base):
    """One row per name a resource answers to: its appId and each identifier URI."""

    __tablename__ = "service_principal_names"
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(512), primary_key=True)
    service_principal_id: Mapped[str] = mapped_column(
        ForeignKey("service_principals.id", ondelete="CASCADE")
    )


class PasswordCredential(Base):
    __tablename__ = "password_credentials"
    key_id: Mapped[str] = mapped_column(GUID, primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    display_name: Mapped[str | None] = mapped_column(String(256))
    hint: Mapped[str] = mapped_column(String(3))
    # HMAC-SHA256 of the secret under the deployment's pepper; never the secret itself.
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    __table_args__ = (Index("ix_password_credentials_app", "application_id"),)


class KeyCredential(Base):
    __tablename__ = "key_credentials"
    key_id: Mapped[str] = mapped_column(GUID, primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    display_name: Mapped[str | None] = mapped_column(String(256))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    thumbprint_sha1: Mapped[str] = mapped_column(String(64))
    thumbprint_sha256: Mapped[str] = mapped_column(String(64))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    __table_args__ = (Index("ix_key_credentials_app", "application_id"),)


class FederatedIdentityCredential(Base):
    """Trust in the tokens an external issuer gives one workload (Graph's
    federatedIdentityCredential): a token whose ``iss`` and ``sub`` equal ``issuer`` and
    ``subject`` and whose ``aud`` is the one audience stands for the application. The rules
    (20 per application, names, lengths) are in ``identity.federated_credentials``."""

    __tablename__ = "federated_identity_credentials"
    id: Mapped[str] = mapped_column(GUID, primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    # Unique in its application, ignoring case (checked by the domain, under a row lock).
    name: Mapped[str] = mapped_column(String(120))
    issuer: Mapped[str] = mapped_column(String(600))
    subject: Mapped[str] = mapped_column(String(600))
    audiences: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(600))
    created_at: Mapped[datetime]
    __table_args__ = (Index("ix_federated_identity_credentials_app", "application_id"),)


class AppRoleAssignment(Base):
    """An application permission granted by admin consent (Graph appRoleAssignment)."""

    __tablename__ = "app_role_assignments"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    principal_id: Mapped[str] = mapped_column(
        ForeignKey("service_principals.id", ondelete="CASCADE")
    )
    resource_id: Mapped[str] = mapped_column(
        ForeignKey("service_principals.id", ondelete="CASCADE")
    )
    app_role_id: Mapped[str] = mapped_column(GUID)
    created_at: Mapped[datetime]
    __table_args__ = (
        UniqueConstraint("principal_id", "resource_id", "app_role_id"),
        Index("ix_app_role_assignments_resource", "resource_id"),
    )


class OAuth2PermissionGrant(Base):
    """Delegated permissions consented for all principals (Graph oauth2PermissionGrant)."""

    __tablename__ = "oauth2_permission_grants"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("service_principals.id", ondelete="CASCADE"))
    resource_id: Mapped[str] = mapped_column(
        ForeignKey("service_principals.id", ondelete="CASCADE")
    )
    consent_type: Mapped[str] = mapped_column(String(32), default="AllPrincipals")
    principal_id: Mapped[str | None] = mapped_column(GUID)
    scope: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (UniqueConstraint("client_id", "resource_id", "consent_type", "principal_id"),)


class SigningKey(Base):
    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]
    # Published in the JWKS from created_at; signs from activates_at; leaves the JWKS at retires_at.
    activates_at: Mapped[datetime]
    retires_at: Mapped[datetime | None]
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)


class UsedAssertion(Base):
    """Client-assertion ``jti`` values already accepted, per resource, kept until they expire."""

    __tablename__ = "used_assertions"
    client_id: Mapped[str] = mapped_column(GUID, primary_key=True)
    resource: Mapped[str] = mapped_column(String(512), primary_key=True)
    jti: Mapped[str] = mapped_column(String(256), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class SignIn(Base):
    __tablename__ = "sign_ins"
    id: Mapped[str] = mapped_column(GUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    app_id: Mapped[str | None] = mapped_column(String(128))
    app_display_name: Mapped[str | None] = mapped_column(String(256))
    service_principal_id: Mapped[str | None] = mapped_column(GUID)
    resource: Mapped[str | None] = mapped_column(String(512))
    resource_display_name: Mapped[str | None] = mapped_column(String(256))
    resource_id: Mapped[str | None] = mapped_column(GUID)
    error_code: Mapped[int] = mapped_column(Integer, default=0)
    failure_reason: Mapped[str | None] = mapped_column(String(1024))
    credential_type: Mapped[str | None] = mapped_column(String(32))
    credential_key_id: Mapped[str | None] = mapped_column(GUID)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    correlation_id: Mapped[str | None] = mapped_column(String(64))


class User(Base):
    """A person who signs in to the portal. Directory roles and DICOM data roles decide what
    they may do (``identity.policy``); the password is stored as an argon2id hash only."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(GUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # Stored lowercased: sign-in names are case-insensitive, as in Entra ID.
    user_principal_name: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str] = mapped_column(String(256))
    password_hash: Mapped[str] = mapped_column(String(256))
    account_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # "Global Administrator", "Application Administrator", "Application Developer" or None.
    directory_role: Mapped[str | None] = mapped_column(String(64))
    # "DICOM Data Reader", "DICOM Data Owner" or None: what the person may do with DICOM data.
    dicom_role: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    password_changed_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("tenant_id", "user_principal_name"),)


class SignInThrottle(Base):
    """Portal sign-in attempts counted per account at one address, per address and per
    account, so guessing is slowed on every worker and host (``identity.throttle``). The parts
    of the key a scope does not use are empty strings."""

    __tablename__ = "sign_in_throttles"
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_principal_name: Mapped[str] = mapped_column(String(256), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    # When the count starts over (and the row may be swept): a window after the first
    # failure, or after the end of the last lock.
    expires_at: Mapped[datetime] = mapped_column(index=True)


class PortalSession(Base):
    """A signed-in browser. The cookie carries a random value; only its SHA-256 is stored."""

    __tablename__ = "portal_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AuthorizationCode(Base):
    """An authorization code (RFC 6749 §4.1.2) between the authorize and token endpoints.

    Only the code's SHA-256 is stored; the row keeps what the redemption must check (client,
    redirect URI, PKCE challenge) and what the tokens carry. Redeemed codes stay until they
    expire, so a replay is recognised (and revokes the tokens issued for it).
    """

    __tablename__ = "authorization_codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_app_id: Mapped[str] = mapped_column(GUID)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(512))
    platform: Mapped[str] = mapped_column(String(16))  # "web", "spa" or "publicClient"
    scope: Mapped[str] = mapped_column(Text)  # as granted: reserved and resource scopes
    nonce: Mapped[str | None] = mapped_column(String(512))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    authenticated_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    redeemed_at: Mapped[datetime | None]
    # The refresh-token family its redemption started: revoked when the code is replayed.
    family_id: Mapped[str | None] = mapped_column(GUID)


class RefreshToken(Base):
    """A refresh token, single use: each redemption marks it used and issues the next of its
    family (OAuth 2.0 Security BCP §4.14.2). Only the token's SHA-256 is stored."""

    __tablename__ = "refresh_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(GUID, index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_app_id: Mapped[str] = mapped_column(GUID)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(Text)
    # When the person entered their password: a password reset since revokes the family.
    authenticated_at: Mapped[datetime]
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]


class DeviceCode(Base):
    """A device authorization (RFC 8628 §3.2) between the device authorization endpoint, the
    person at ``/devicelogin`` and the device polling the token endpoint.

    Only the SHA-256 of the device code and of the user code is stored. The row is pending
    until the person approves or declines it, and is deleted when its tokens are issued.
    """

    __tablename__ = "device_codes"
    device_code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_app_id: Mapped[str] = mapped_column(GUID)
    scope: Mapped[str] = mapped_column(Text)  # as asked: reserved and resource scopes
    state: Mapped[str] = mapped_column(String(16))  # "pending", "approved" or "denied"
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    authenticated_at: Mapped[datetime | None]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # The polling interval the device must keep; each slow_down adds 5 s (RFC 8628 §3.5).
    interval_seconds: Mapped[int] = mapped_column(Integer)
    polled_at: Mapped[datetime | None]


# DICOM index (dicomite.dicom.index.schema): one row per study, series and instance, plus the change
# feed. Searchable attributes are columns (declared once in ``dicom.index.INDEXED``); what QIDO
# and /metadata return is precomputed DICOM JSON, so no request re-parses a file.


class DicomPartition(Base):
    """A data partition (Azure's "Enable data partitioning"): created by its first STOW, never
    updated nor deleted; ``Microsoft.Default`` (key 1) holds the data of a deployment without
    partitions."""

    __tablename__ = "dicom_partitions"
    key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


class DicomStudy(Base):
    __tablename__ = "dicom_studies"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    partition_key: Mapped[int] = mapped_column(ForeignKey("dicom_partitions.key"), default=1)
    # Unique within its partition; looked up without one when partitions are off.
    study_uid: Mapped[str] = mapped_column(String(64), index=True)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    patient_name: Mapped[str | None] = mapped_column(String(324))
    patient_name_words: Mapped[str | None] = mapped_column(String(400))
    patient_birth_date: Mapped[str | None] = mapped_column(String(8))
    accession_number: Mapped[str | None] = mapped_column(String(64), index=True)
    referring_physician_name: Mapped[str | None] = mapped_column(String(324))
    referring_physician_name_words: Mapped[str | None] = mapped_column(String(400))
    study_date: Mapped[str | None] = mapped_column(String(8), index=True)
    study_description: Mapped[str | None] = mapped_column(String(256))
    # ModalitiesInStudy: its series' distinct modalities joined by store.functions.SEPARATOR,
    # kept by the index writer whenever its series change, so a study search reads no series.
    modalities: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]
    # Prefix searches (``PatientName=SMITH^J*``) read this index: by code point on SQLite
    # (qido adds a range), and through text_pattern_ops for LIKE on PostgreSQL.
    __table_args__ = (
        Index(
            "ix_dicom_studies_patient_name",
            "patient_name",
            postgresql_ops={"patient_name": "text_pattern_ops"},
        ),
        UniqueConstraint("partition_key", "study_uid", name="uq_dicom_studies_partition_study"),
    )


class DicomSeries(Base):
    __tablename__ = "dicom_series"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("dicom_studies.pk", ondelete="CASCADE"))
    series_uid: Mapped[str] = mapped_column(String(64), index=True)
    modality: Mapped[str | None] = mapped_column(String(16), index=True)
    performed_procedure_step_start_date: Mapped[str | None] = mapped_column(String(8))
    manufacturer_model_name: Mapped[str | None] = mapped_column(String(64))
    attributes: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("study_pk", "series_uid"),)


class DicomInstance(Base):
    __tablename__ = "dicom_instances"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_pk: Mapped[int] = mapped_column(
        ForeignKey("dicom_studies.pk", ondelete="CASCADE"), index=True
    )
    series_pk: Mapped[int] = mapped_column(ForeignKey("dicom_series.pk", ondelete="CASCADE"))
    sop_uid: Mapped[str] = mapped_column(String(64), index=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    number_of_frames: Mapped[int] = mapped_column(Integer, default=1)
    blob_key: Mapped[str] = mapped_column(String(256))
    size: Mapped[int] = mapped_column(Integer)
    # A fresh value at every write of the row: ETags of /metadata derive from it.
    version: Mapped[str] = mapped_column(String(32))
    attributes: Mapped[str] = mapped_column(Text)
    metadata_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("series_pk", "sop_uid"),)


class DicomInstanceOriginal(Base):
    """An updated instance's original version (Azure DICOM "Update DICOM files"): its blob and
    metadata as first stored; the instance row holds the latest version."""

    __tablename__ = "dicom_instance_originals"
    instance_pk: Mapped[int] = mapped_column(
        ForeignKey("dicom_instances.pk", ondelete="CASCADE"), primary_key=True
    )
    blob_key: Mapped[str] = mapped_column(String(256), index=True)
    size: Mapped[int] = mapped_column(Integer)
    metadata_json: Mapped[str] = mapped_column(Text)


class DicomChange(Base):
    __tablename__ = "dicom_changes"
    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    partition_key: Mapped[int] = mapped_column(Integer, default=1)
    timestamp: Mapped[datetime] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    study_uid: Mapped[str] = mapped_column(String(64))
    series_uid: Mapped[str] = mapped_column(String(64))
    sop_uid: Mapped[str] = mapped_column(String(64), index=True)


# DICOM data management (dicomite.dicom.operations, dicom.index.extended_tags): extended query
# tags, their values per level, their indexing errors, and durable long-running operations.


class DicomIndexState(Base):
    """One row: ``tags_version`` is bumped by every change of the set of extended query tags.
    A STOW reads it in its index transaction (sharing the row's lock on PostgreSQL) so that a
    tag being added waits for the STOWs that did not see it, and those after it see it."""

    __tablename__ = "dicom_index_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tags_version: Mapped[int] = mapped_column(Integer, default=0)
    # Set by the first start with --data-partitions; never cleared (Azure: "can't be turned off").
    data_partitions: Mapped[bool] = mapped_column(Boolean, default=False)


class DicomExtendedQueryTag(Base):
    __tablename__ = "dicom_extended_query_tags"
    key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(String(8), unique=True)  # "00101010": group, element
    vr: Mapped[str] = mapped_column(String(2))
    private_creator: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer)  # dicom.index.schema.Level
    status: Mapped[str] = mapped_column(String(8))  # adding, ready, deleting
    query_status: Mapped[str] = mapped_column(String(8))  # enabled, disabled
    operation_id: Mapped[str | None] = mapped_column(String(32))  # the reindex while adding
    created_at: Mapped[datetime]


class _TagValue:
    """An extended query tag's value at one study, series or instance: as matched
    (``text_value``, PN ``words``, or ``number_value``) and as returned (``element``)."""

    tag_key: Mapped[int] = mapped_column(
        ForeignKey("dicom_extended_query_tags.key", ondelete="CASCADE"), primary_key=True
    )
    text_value: Mapped[str | None] = mapped_column(String(324))
    words: Mapped[str | None] = mapped_column(String(400))
    number_value: Mapped[float | None] = mapped_column(Float(53))
    element: Mapped[str] = mapped_column(Text)


class DicomStudyTagValue(_TagValue, Base):
    __tablename__ = "dicom_study_tag_values"
    resource_pk: Mapped[int] = mapped_column(
        ForeignKey("dicom_studies.pk", ondelete="CASCADE"), primary_key=True, index=True
    )
    __table_args__ = (
        Index("ix_dicom_study_tag_values_text", "tag_key", "text_value"),
        Index("ix_dicom_study_tag_values_number", "tag_key", "number_value"),
    )


class DicomSeriesTagValue(_TagValue, Base):
    __tablename__ = "dicom_series_tag_values"
    resource_pk: Mapped[int] = mapped_column(
        ForeignKey("dicom_series.pk", ondelete="CASCADE"), primary_key=True, index=True
    )
    __table_args__ = (
        Index("ix_dicom_series_tag_values_text", "tag_key", "text_value"),
        Index("ix_dicom_series_tag_values_number", "tag_key", "number_value"),
    )


class DicomInstanceTagValue(_TagValue, Base):
    __tablename__ = "dicom_instance_tag_values"
    resource_pk: Mapped[int] = mapped_column(
        ForeignKey("dicom_instances.pk", ondelete="CASCADE"), primary_key=True, index=True
    )
    __table_args__ = (
        Index("ix_dicom_instance_tag_values_text", "tag_key", "text_value"),
        Index("ix_dicom_instance_tag_values_number", "tag_key", "number_value"),
    )


class DicomTagError(Base):
    """An instance whose value of an extended query tag could not be indexed by a reindex."""

    __tablename__ = "dicom_tag_errors"
    tag_key: Mapped[int] = mapped_column(
        ForeignKey("dicom_extended_query_tags.key", ondelete="CASCADE"), primary_key=True
    )
    instance_pk: Mapped[int] = mapped_column(
        ForeignKey("dicom_instances.pk", ondelete="CASCADE"), primary_key=True, index=True
    )
    message: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime]


class DicomOperation(Base):
    """A durable long-running operation. ``state`` is its checkpoint (for a reindex: the last
    instance key done); a runner holds ``lease_owner`` until ``lease_until`` while it works on it,
    so one process of the deployment runs each step."""

    __tablename__ = "dicom_operations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # a GUID, 32 hex digits
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    percent_complete: Mapped[int] = mapped_column(Integer, default=0)
    resources: Mapped[list[str]] = mapped_column(JSON, default=list)  # paths below /v{n}/
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    results: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
