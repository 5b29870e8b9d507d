"""``serve(settings)``: the granian server for the settings, run until SIGINT or SIGTERM."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from granian.constants import HTTPModes, Interfaces, SSLProtocols
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import MPServer

from dicomite.settings import Settings

APP = "dicomite.app:create_app_from_env"  # each worker builds its own app (factory)
# Seconds a worker has to finish its requests after SIGINT/SIGTERM before it is killed.
GRACEFUL_SHUTDOWN_SECONDS = 10


# glibc malloc parameters (mallopt(3), "ENVIRONMENT"), read when a process starts: response
# chunks of about 1 MiB are made in worker threads and freed on the event loop, and with
# glibc's sliding defaults their memory went back to the kernel and came again as new zeroed
# pages, chunk after chunk. Below 4 MiB an allocation comes from the heap, and up to 16 MiB of
# free heap top is kept: multipart WADO used ~0.9 ms of server CPU per MB instead of 1.3-1.6
# (bench/README.md). Other C libraries ignore these names; values set by the user are kept.
ALLOCATOR_ENVIRONMENT = {
    "MALLOC_MMAP_THRESHOLD_": str(4 * 1024 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(16 * 1024 * 1024),
}


def prepare_worker_environment() -> None:
    """Workers start as new processes (``spawn``), which read ``ALLOCATOR_ENVIRONMENT`` at
    their start; a forked worker would keep this process's allocator settings."""
    for name, value in ALLOCATOR_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    multiprocessing.set_start_method("spawn", force=True)


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
    prepare_worker_environment()
    build_server(settings, tls, access_log).serve()
