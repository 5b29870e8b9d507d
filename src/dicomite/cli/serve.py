"""``dicomite serve`` and ``dicomite info``."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
import uvicorn

from dicomite.bootstrap import prepare
from dicomite.cli.console import console, reported_errors
from dicomite.cli.options import (
    BlobUrl,
    DatabaseUrl,
    DataDir,
    ForwardedAllowIps,
    Host,
    Http,
    Port,
    PublicUrl,
    build_settings,
    export_to_environment,
)
from dicomite.lean_http import LeanHttp
from dicomite.settings import Settings
from dicomite.tls import ensure_server_certificate
from dicomite.workers import Workers


def serve(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_url: BlobUrl = None,
    host: Host = None,
    port: Port = None,
    public_url: PublicUrl = None,
    http: Http = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Worker processes")] = None,
    tls_cert: Annotated[str | None, typer.Option("--tls-cert", help="Your own certificate")] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="Its private key")] = None,
    access_log: Annotated[
        bool,
        typer.Option("--access-log", help="Log every HTTP request (sign-ins are always logged)"),
    ] = False,
    forwarded_allow_ips: ForwardedAllowIps = None,
) -> None:
    """Start identity, management API, DICOM service and portal on one port."""
    settings = build_settings(
        data_dir=data_dir, database_url=database_url, blob_url=blob_url, host=host, port=port,
        public_url=public_url, http=http, workers=workers, tls_cert=tls_cert, tls_key=tls_key,
        forwarded_allow_ips=forwarded_allow_ips,
    )  # fmt: skip
    with reported_errors():
        context = prepare(settings)
        context.store.dispose()
    ssl = _tls_files(settings)
    export_to_environment(settings)
    console.print(
        f"Dicomite on {settings.effective_public_url} · tenant {context.tenant_id} · "
        f"authority {settings.effective_public_url}/{context.tenant_id}",
        highlight=False,
    )
    options: dict[str, Any] = {
        "factory": True,
        "http": LeanHttp,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": 10,
        "proxy_headers": settings.http,
        "server_header": False,
        "access_log": access_log,
        **ssl,
    }
    app = "dicomite.app:create_app_from_env"
    if settings.workers > 1 and not Workers.supported():  # Windows: uvicorn's shared socket
        uvicorn.run(app, **options)
    elif settings.workers > 1:
        raise typer.Exit(Workers(uvicorn.Config(app, **options), settings.workers).run())
    else:
        uvicorn.Server(uvicorn.Config(app, **options)).run()


def _tls_files(settings: Settings) -> dict[str, Any]:
    if settings.http:
        return {}
    if settings.tls_cert and settings.tls_key:
        return {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
    hosts = {urlsplit(settings.effective_public_url).hostname or "localhost"}
    if settings.host not in ("0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
        hosts.add(settings.host)
    cert, key = ensure_server_certificate(settings.tls_dir, hosts)
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


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
        data_dir=data_dir, database_url=database_url, blob_url=blob_url, host=host, port=port,
        public_url=public_url, http=http,
    )  # fmt: skip
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
