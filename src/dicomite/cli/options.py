"""Options shared by every command that opens a deployment, and the Settings they build."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from dicomite.client_address import InvalidForwarder, trusted_proxies
from dicomite.cors import InvalidOrigin, cors_policy
from dicomite.identity.trust import InvalidTrustSetting, issuer_jwks, trusted_authorities
from dicomite.settings import Settings

# Defaults are written "\\[default: …]": Rich reads "[env …]" or "[https…]" as a markup tag and
# would drop it from --help.
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Data folder \\[env DICOMITE_DATA_DIR; default: ./dicomite-data]"
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL URL \\[env DICOMITE_DATABASE_URL; default: SQLite in the data folder]",
    ),
]
BlobUrl = Annotated[
    str | None,
    typer.Option(
        "--blob-url",
        help="Azure Blob Storage URL \\[env DICOMITE_BLOB_URL; default: DATA_DIR/blobs]",
    ),
]
ExportDir = Annotated[
    str | None,
    typer.Option(
        "--export-dir",
        help="The only folder exports may write to \\[env DICOMITE_EXPORT_DIR; default: "
        "DATA_DIR/exports]",
    ),
]
Host = Annotated[
    str | None,
    typer.Option("--host", help="Address to bind \\[env DICOMITE_HOST; default: 127.0.0.1]"),
]
Port = Annotated[
    int | None, typer.Option("--port", help="Port \\[env DICOMITE_PORT; default: 8443]")
]
PublicUrl = Annotated[
    str | None,
    typer.Option(
        "--public-url", help="URL clients use (issuer, links) \\[default: https://localhost:PORT]"
    ),
]
Http = Annotated[
    bool | None,
    typer.Option(
        "--http/--https",
        help="Plain HTTP, behind a TLS-terminating proxy \\[default: HTTPS, generated CA]",
    ),
]
DataPartitions = Annotated[
    bool | None,
    typer.Option(
        "--data-partitions",
        help="Turn DICOM data partitions on, for good: data stored before is in "
        "Microsoft.Default \\[env DICOMITE_DATA_PARTITIONS; default: as the deployment has it]",
    ),
]
ViewerDir = Annotated[
    Path | None,
    typer.Option(
        "--viewer-dir",
        help="Where the OHIF viewer is installed \\[env DICOMITE_VIEWER_DIR; default: "
        "DATA_DIR/viewer]",
    ),
]

ForwardedAllowIps = Annotated[
    str | None,
    typer.Option(
        "--forwarded-allow-ips",
        help="Proxies whose X-Forwarded-For names the client (sign-in throttling): addresses "
        "or CIDR networks, comma-separated [env DICOMITE_FORWARDED_ALLOW_IPS; default none]",
    ),
]

FORWARDERS_HINT = "--forwarded-allow-ips (env DICOMITE_FORWARDED_ALLOW_IPS)"

CorsOrigins = Annotated[
    list[str] | None,
    typer.Option(
        "--cors-origin",
        metavar="ORIGIN",
        help="A web origin (https://viewer.example.org) allowed to call the DICOM service and "
        "the management API from a browser, or *; repeat for more [env DICOMITE_CORS_ORIGINS, "
        "comma-separated; default none]",
    ),
]
CORS_HINT = "--cors-origin (env DICOMITE_CORS_ORIGINS)"

TrustedAuthorities = Annotated[
    list[str] | None,
    typer.Option(
        "--trusted-authority",
        metavar="ISSUER=AUDIENCE",
        help="Another OpenID provider whose tokens for AUDIENCE the DICOM service accepts "
        "(their roles decide access), e.g. https://login.microsoftonline.com/{tid}/v2.0="
        "api://{appId}; repeat for more [env DICOMITE_TRUSTED_AUTHORITIES, comma-separated]",
    ),
]
IssuerCaBundle = Annotated[
    str | None,
    typer.Option(
        "--issuer-ca-bundle",
        help="CA certificates (PEM) to check other OpenID providers' HTTPS with (federated "
        "credentials, trusted authorities) [env DICOMITE_ISSUER_CA_BUNDLE; default: the system's]",
    ),
]
IssuerJwks = Annotated[
    list[str] | None,
    typer.Option(
        "--issuer-jwks",
        metavar="ISSUER=PATH|URL",
        help="A JWKS file or https URL standing in for an issuer's discovery document (an "
        "on-premises cluster); repeat for more [env DICOMITE_ISSUER_JWKS, comma-separated]",
    ),
]
TRUST_HINT = "--trusted-authority / --issuer-jwks"


def build_settings(**overrides: Any) -> Settings:
    """CLI options win over ``DICOMITE_*`` environment variables, which win over defaults."""
    given = {k: v for k, v in overrides.items() if v is not None}
    for repeatable in ("cors_origins", "trusted_authorities", "issuer_jwks"):
        if isinstance(given.get(repeatable), list):
            given[repeatable] = ",".join(given[repeatable])
    for folder in ("data_dir", "export_dir"):
        if folder in given:
            given[folder] = Path(given[folder]).resolve()
    settings = Settings(**given)
    try:
        trusted_proxies(settings.forwarded_allow_ips)
    except InvalidForwarder as problem:
        raise typer.BadParameter(str(problem), param_hint=FORWARDERS_HINT) from None
    try:
        cors_policy(settings.cors_origins)
    except InvalidOrigin as problem:
        raise typer.BadParameter(str(problem), param_hint=CORS_HINT) from None
    try:
        trusted_authorities(settings.trusted_authorities)
        issuer_jwks(settings.issuer_jwks)
    except InvalidTrustSetting as problem:
        raise typer.BadParameter(str(problem), param_hint=TRUST_HINT) from None
    return settings.model_copy(update={"data_dir": settings.data_dir.resolve()})


def export_to_environment(settings: Settings) -> None:
    """Hand the settings to worker processes, which build their own from the environment."""
    for name, value in settings.model_dump(exclude_none=True).items():
        os.environ[f"DICOMITE_{name.upper()}"] = str(value)
