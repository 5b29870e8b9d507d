"""What the ``dicomite dicom`` commands share: the options that reach a DICOM service, and a
session on it with a client-credentials token for the DICOM resource (``dicomite token get``
makes the same request)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import httpx
import typer

from dicomite.cli.options import build_settings
from dicomite.cli.token import default_authority, read_secret, request_token, tls_verify

ClientId = Annotated[str, typer.Option("--client-id", help="Application (client) ID")]
ClientSecret = Annotated[
    str, typer.Option("--client-secret", help="Client secret ('-' reads stdin)")
]
Url = Annotated[
    str | None, typer.Option("--url", help="DICOM service base \\[default: {public_url}/dicom/v1]")
]
Authority = Annotated[
    str | None,
    typer.Option("--authority", help="{public_url}/{tenant} \\[default: this deployment's]"),
]
PartitionName = Annotated[
    str | None,
    typer.Option(
        "--partition",
        help="The data partition (deployments with --data-partitions) \\[default: none]",
    ),
]
CaFile = Annotated[
    Path | None, typer.Option("--ca-file", help="CA to trust \\[default: DATA_DIR/tls/ca.pem]")
]


@dataclass
class Session:
    client: httpx.Client
    base: str


def open_session(
    client_id: str,
    client_secret: str,
    url: str | None,
    authority: str | None,
    ca_file: Path | None,
    data_dir: Path | None,
    database_url: str | None,
) -> Session:
    settings = build_settings(data_dir=data_dir, database_url=database_url)
    base = (url or f"{settings.effective_public_url}/dicom/v1").rstrip("/")
    issuer = authority or default_authority(settings, data_dir, database_url)
    token_url = f"{issuer.rstrip('/')}/oauth2/v2.0/token"
    verify: ssl.SSLContext | bool = tls_verify(settings, base, ca_file)
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": read_secret(client_secret),
        "scope": f"{settings.dicom_resource_uri}/.default",
    }
    token = request_token(token_url, form, tls_verify(settings, token_url, ca_file))
    headers = {"Authorization": f"Bearer {token}"}
    return Session(httpx.Client(verify=verify, headers=headers, timeout=300), base)


def in_partition(session: Session, partition: str | None) -> Session:
    """The session on the study routes of ``partition`` (``/partitions/{name}``, Azure's data
    partitions), or as it is when none is given."""
    if partition is None:
        return session
    return replace(session, base=f"{session.base}/partitions/{quote(partition, safe='')}")
