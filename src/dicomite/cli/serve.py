"""``dicomite serve`` and ``dicomite info``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from dicomite.bootstrap import prepare, register_viewer
from dicomite.cli.banner import print_banner
from dicomite.cli.console import console, reported_errors
from dicomite.cli.options import (
    BlobUrl,
    CorsOrigins,
    DatabaseUrl,
    DataDir,
    DataPartitions,
    ExportDir,
    ForwardedAllowIps,
    Host,
    Http,
    IssuerCaBundle,
    IssuerJwks,
    Port,
    PublicUrl,
    TrustedAuthorities,
    ViewerDir,
    build_settings,
    export_to_environment,
)
from dicomite.server import serve as run_server
from dicomite.settings import Settings
from dicomite.tls import ensure_server_certificate

WORKERS_HELP = (
    "Worker processes, or auto: one per CPU core \\[env DICOMITE_WORKERS; default: "
    f"{Settings.model_fields['workers'].default}]"
)


def serve(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_url: BlobUrl = None,
    export_dir: ExportDir = None,
    host: Host = None,
    port: Port = None,
    public_url: PublicUrl = None,
    http: Http = None,
    workers: Annotated[
        str | None,
        typer.Option("--workers", metavar="N|auto", help=WORKERS_HELP),
    ] = None,
    tls_cert: Annotated[
        str | None,
        typer.Option("--tls-cert", help="Your own certificate (PEM) \\[default: generated]"),
    ] = None,
    tls_key: Annotated[
        str | None, typer.Option("--tls-key", help="Its private key (PEM) \\[default: generated]")
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            help="Log every HTTP request (sign-ins are always logged) \\[default: off]",
        ),
    ] = False,
    forwarded_allow_ips: ForwardedAllowIps = None,
    cors_origin: CorsOrigins = None,
    trusted_authority: TrustedAuthorities = None,
    issuer_ca_bundle: IssuerCaBundle = None,
    issuer_jwks: IssuerJwks = None,
    viewer_dir: ViewerDir = None,
    data_partitions: DataPartitions = None,
) -> None:
    """Start identity, management API, DICOM service and portal on one port."""
    settings = build_settings(
        data_dir=data_dir,
        database_url=database_url,
        blob_url=blob_url,
        export_dir=export_dir,
        host=host,
        port=port,
        public_url=public_url,
        http=http,
        workers=workers,
        tls_cert=tls_cert,
        tls_key=tls_key,
        forwarded_allow_ips=forwarded_allow_ips,
        cors_origins=cors_origin,
        trusted_authorities=trusted_authority,
        issuer_ca_bundle=issuer_ca_bundle,
        issuer_jwks=issuer_jwks,
        viewer_dir=viewer_dir,
        data_partitions=data_partitions,
    )
    with reported_errors():
        context = prepare(settings)
        viewer_refusal = register_viewer(context)
        context.store.dispose()
    tls = _tls_files(settings)
    export_to_environment(settings)
    print_banner(settings, context.tenant_id, viewer_refusal)
    run_server(settings, tls, access_log)


def _tls_files(settings: Settings) -> tuple[Path, Path] | None:
    """The certificate and key to serve with: the user's own, or generated; None for --http."""
    if settings.http:
        return None
    if settings.tls_cert and settings.tls_key:
        return settings.tls_cert, settings.tls_key
    hosts = {urlsplit(settings.effective_public_url).hostname or "localhost"}
    if settings.host not in ("0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
        hosts.add(settings.host)
    return ensure_server_certificate(settings.tls_dir, hosts)


def info(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_url: BlobUrl = None,
    host: Host = None,
    port: Port = None,
    public_url: PublicUrl = None,
    http: Http = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Print the tenant, authority and service URLs of this deployment."""
    settings = build_settings(
        data_dir=data_dir,
        database_url=database_url,
        blob_url=blob_url,
        host=host,
        port=port,
        public_url=public_url,
        http=http,
    )
    with reported_errors():
        context = prepare(settings)
    base = settings.effective_public_url
    details = {
        "tenant_id": context.tenant_id,
        "tenant_domain": context.tenant_domain,
        "authority": f"{base}/{context.tenant_id}",
        "token_endpoint": f"{base}/{context.tenant_id}/oauth2/v2.0/token",
        "dicom_service_url": f"{base}/dicom",
        "dicom_resource": settings.dicom_resource_uri,
        "graph_url": f"{base}/graph/v1.0",
        "portal_url": f"{base}/portal",
        "ca_file": None if settings.http else str(settings.ca_file),
        "data_dir": str(settings.data_dir),
        "database": "postgresql" if settings.database_url else "sqlite",
        "bootstrap_credentials_file": str(settings.bootstrap_file)
        if settings.bootstrap_file.exists()
        else None,
    }
    if as_json:
        typer.echo(json.dumps(details, indent=2))
    else:
        for name, value in details.items():
            console.print(f"[bold]{name}[/bold]: {value}", highlight=False)
