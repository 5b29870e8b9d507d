"""What the ``dicomite dicom`` commands share: the options that reach a DICOM service
(declared once, added to each command by ``connected``), and a session on it with a
client-credentials token for the DICOM resource (``dicomite token get`` makes the same
request)."""

from __future__ import annotations

import functools
import inspect
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer

from dicomite.cli.options import DatabaseUrl, DataDir, build_settings
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


@dataclass(frozen=True)
class Connection:
    """The connection options a command was given; ``open`` asks for a token."""

    client_id: str
    client_secret: str
    url: str | None
    authority: str | None
    ca_file: Path | None
    data_dir: Path | None
    database_url: str | None

    def open(self) -> Session:
        settings = build_settings(data_dir=self.data_dir, database_url=self.database_url)
        base = (self.url or f"{settings.effective_public_url}/dicom/v1").rstrip("/")
        issuer = self.authority or default_authority(settings, self.data_dir, self.database_url)
        token_url = f"{issuer.rstrip('/')}/oauth2/v2.0/token"
        verify: ssl.SSLContext | bool = tls_verify(settings, base, self.ca_file)
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": read_secret(self.client_secret),
            "scope": f"{settings.dicom_resource_uri}/.default",
        }
        token = request_token(token_url, form, tls_verify(settings, token_url, self.ca_file))
        headers = {"Authorization": f"Bearer {token}"}
        return Session(httpx.Client(verify=verify, headers=headers, timeout=300), base)


def _connection_options(
    client_id: ClientId,
    client_secret: ClientSecret,
    url: Url = None,
    authority: Authority = None,
    ca_file: CaFile = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The connection options, as a command's parameters (never called: ``connected``)."""


_OPTIONS = inspect.signature(_connection_options, eval_str=True).parameters


def connected(command: Callable[..., None]) -> Callable[..., None]:
    """``command(connection, …)`` as a Typer command taking the connection options after its
    own. Typer reads a command's parameters from ``inspect.signature``, which a function's
    ``__signature__`` gives; every parameter is keyword-only there, as Typer passes them."""
    own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]
    parameters = [p.replace(kind=p.KEYWORD_ONLY) for p in [*own, *_OPTIONS.values()]]

    @functools.wraps(command)
    def run(**values: Any) -> None:
        options = {name: values.pop(name) for name in _OPTIONS}
        command(Connection(**options), **values)

    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return run


def in_partition(session: Session, partition: str | None) -> Session:
    """The session on the study routes of ``partition`` (``/partitions/{name}``, Azure's data
    partitions), or as it is when none is given."""
    if partition is None:
        return session
    return replace(session, base=f"{session.base}/partitions/{quote(partition, safe='')}")
