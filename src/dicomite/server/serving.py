"""``serve(settings)``: the granian server for the settings, run until SIGINT or SIGTERM."""

from __future__ import annotations

from pathlib import Path

from granian.constants import HTTPModes, Interfaces, SSLProtocols
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import MPServer

from dicomite.settings import Settings

APP = "dicomite.app:create_app_from_env"  # each worker builds its own app (factory)
# Seconds a worker has to finish its requests after SIGINT/SIGTERM before it is killed.
GRACEFUL_SHUTDOWN_SECONDS = 10


def http1_settings(settings: Settings) -> HTTP1Settings:
    """hyper reads a request head into a buffer of at most ``max_buffer_size`` bytes and
    answers 431 when the head does not fit; ``header_read_timeout`` is in milliseconds."""
    return HTTP1Settings(
        header_read_timeout=round(settings.http_header_read_timeout_seconds * 1000),
        max_buffer_size=settings.http_max_header_bytes,
    )


def build_server(
    settings: Settings, tls: tuple[Path, Path] | None, access_log: bool = False
) -> MPServer:
    """Worker processes (``MPServer``: one interpreter each, as on a GIL build). ``tls``: the
    certificate and key files, or None for plain HTTP."""
    cert, key = tls if tls else (None, None)
    return MPServer(
        APP,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=settings.effective_workers,
        respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_SHUTDOWN_SECONDS,
        # HTTP/1.1 only: hyper's HTTP/2 has no header-read timeout.
        http=HTTPModes.http1,
        http1_settings=http1_settings(settings),
        ssl_cert=cert,
        ssl_key=key,
        ssl_protocol_min=SSLProtocols.tls12,  # TLS 1.2 clients are still common
        log_level=LogLevels(settings.log_level.lower()),
        log_access=access_log,
    )


def serve(settings: Settings, tls: tuple[Path, Path] | None, access_log: bool = False) -> None:
    build_server(settings, tls, access_log).serve()
