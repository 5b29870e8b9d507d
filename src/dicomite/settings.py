"""The one typed settings object. Nothing else in the package reads ``os.environ``."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DICOM_RESOURCE = "https://dicom.healthcareapis.azure.com"


class Settings(BaseSettings):
    """Everything a Dicomite process needs to know; CLI options override the ``DICOMITE_*`` env."""

    model_config = SettingsConfigDict(env_prefix="DICOMITE_", extra="ignore")

    data_dir: Path = Path("./dicomite-data")
    database_url: str | None = None
    blob_url: str | None = None
    # The only folder exports may write to (their "folder" destinations are paths below it);
    # unset: DATA_DIR/exports.
    export_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65535)
    # Worker processes; "auto": one per CPU core this process may run on.
    workers: Annotated[int, Field(ge=1, le=64)] | Literal["auto"] = "auto"
    public_url: str | None = None
    http: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Where `dicomite viewer install` puts the OHIF build and the server finds it; None:
    # DATA_DIR/viewer.
    viewer_dir: Path | None = None

    tenant_id: uuid.UUID | None = None
    tenant_domain: str = "dicomite.localhost"
    tenant_display_name: str = "Dicomite"
    dicom_resource_uri: str = DEFAULT_DICOM_RESOURCE

    bootstrap_admin_username: str | None = None
    bootstrap_admin_password: str | None = None
    bootstrap_client_id: uuid.UUID | None = None
    bootstrap_client_secret: str | None = None

    # Encrypts signing private keys at rest; when unset a key file inside the data dir is used.
    key_encryption_key: str | None = None

    # STOW request limit (the Azure DICOM service documents 2 GB per request).
    dicom_max_request_bytes: int = Field(default=2 * 1024**3, ge=1)
    # What one request may inflate: Deflate-decompressed bytes and decoded pixels together.
    dicom_max_inflated_bytes: int = Field(default=512 * 1024**2, ge=1024**2)
    # Turns data partitions on for good at this start (recorded in the index; see
    # dicom.index.partitions); unset, a deployment keeps what it has.
    data_partitions: bool = False
    # Instances one step of a reindex or an export handles, each step its own transaction and
    # checkpoint; unset: 1,000 for a reindex, 500 for an export.
    dicom_operation_batch_size: int | None = Field(default=None, ge=10, le=10_000)

    # Peers whose X-Forwarded-For is believed (comma-separated addresses or CIDR networks);
    # empty: none, the socket peer is the client address.
    forwarded_allow_ips: str = ""
    # Web origins allowed to call the DICOM service and the management API from a browser
    # (comma-separated, or *); empty: no cross-origin access (see dicomite.cors).
    cors_origins: str = ""
    # Other OpenID providers: ISSUER=AUDIENCE pairs whose tokens the DICOM service accepts, the
    # CA bundle their HTTPS is checked with (default: the system's), and ISSUER=PATH static
    # JWKS files for issuers whose discovery is unreachable (see dicomite.identity.trust).
    trusted_authorities: str = ""
    issuer_ca_bundle: Path | None = None
    issuer_jwks: str = ""

    # HTTP limits: a request head larger than this is answered 431 (the server also reads bodies
    # through a buffer this large: smaller values slow uploads); a client that has not sent a
    # whole request head this long after it began is disconnected (slowloris).
    http_max_header_bytes: int = Field(default=8192 + 4096 * 100, ge=8192, le=16 * 1024**2)
    http_header_read_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)

    access_token_lifetime_seconds: int = Field(default=3599, ge=300, le=86400)
    # How long a process verifies tokens with the signing keys it last read before reading them
    # again: a key retired early or withdrawn (on any host) is refused within this.
    signing_keys_max_age_seconds: float = Field(default=30.0, ge=1, le=300)
    log_level: str = "info"

    @field_validator("public_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def effective_workers(self) -> int:
        if self.workers != "auto":
            return self.workers
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1

    @property
    def scheme(self) -> str:
        return "http" if self.http else "https"

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url
        wildcard_or_loopback = ("127.0.0.1", "0.0.0.0", "::", "::1")  # noqa: S104 - compared only
        host = "localhost" if self.host in wildcard_or_loopback else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'dicomite.db').resolve()}"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def effective_viewer_dir(self) -> Path:
        return self.viewer_dir or self.data_dir / "viewer"

    @property
    def export_root(self) -> Path:
        return self.export_dir or self.data_dir / "exports"

    @property
    def bootstrap_file(self) -> Path:
        return self.data_dir / "bootstrap-credentials.json"

    @property
    def key_encryption_key_file(self) -> Path:
        return self.data_dir / "key-encryption.key"
