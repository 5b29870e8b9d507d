"""``dicomite serve`` and ``dicomite info`` as a user runs them."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
import pytest

from dicomite.bootstrap import open_context
from dicomite.identity.signins import list_sign_ins
from dicomite.settings import Settings
from tests.fixtures.server import Server, free_port, make_server


def test_graceful_shutdown_finishes_requests_and_flushes_the_log(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    server.start()
    data = {
        "grant_type": "client_credentials",
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "scope": "https://graph.microsoft.com/.default",
    }

    def request(_: int) -> int:
        with server.client() as client:
            return client.post(server.token_url, data=data).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(request, range(40)))
    assert statuses == [200] * 40
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0
    log = server.log_text()
    assert "Stopped worker-1" in log and "Granian shutdown completed" in log
    assert "Traceback" not in log and "[ERROR]" not in log
    context = open_context(Settings(data_dir=server.data_dir))
    with context.store.read() as session:
        logged = list_sign_ins(session, server.tenant_id, limit=1000)
    context.store.dispose()
    assert len(logged) == 40
    assert all(row.error_code == 0 and row.app_id == server.client_id for row in logged)


def test_info_json_lists_the_contract_fields(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dicomite",
            "info",
            "--json",
            "--data-dir",
            str(tmp_path),
            "--port",
            "9443",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    info = json.loads(result.stdout)
    base = "https://localhost:9443"
    assert info["authority"] == f"{base}/{info['tenant_id']}"
    assert info["dicom_service_url"] == f"{base}/dicom"
    assert info["graph_url"] == f"{base}/graph/v1.0"
    assert info["ca_file"] == str(tmp_path / "tls" / "ca.pem")
    assert info["tenant_domain"] and info["portal_url"]
    credentials = tmp_path / "bootstrap-credentials.json"
    assert credentials.stat().st_mode & 0o777 == 0o600
    assert json.loads(credentials.read_text())["tenant_id"] == info["tenant_id"]


def test_https_uses_the_generated_ca_and_public_url(tmp_path: Path) -> None:
    port = free_port()
    server = make_server(tmp_path, extra_args=["--public-url", f"https://127.0.0.1:{port}"])
    server.port = port
    server.start()
    try:
        context = ssl.create_default_context(cafile=server.ca_file)
        with httpx.Client(verify=context) as client:
            url = (
                f"https://127.0.0.1:{port}/{server.tenant_id}/v2.0/.well-known/openid-configuration"
            )
            issuer = client.get(url).json()["issuer"]
        assert issuer == f"https://127.0.0.1:{port}/{server.tenant_id}/v2.0"
        with httpx.Client(verify=ssl.create_default_context()) as untrusted:
            try:
                untrusted.get(url)
                raise AssertionError("a certificate from the local CA must not be trusted blindly")
            except httpx.ConnectError:
                pass
    finally:
        server.stop()


def test_restart_keeps_tenant_keys_and_secrets(fresh_server: Server) -> None:
    first = fresh_server.graph_token()
    fresh_server.stop()
    fresh_server.start()
    second = fresh_server.graph_token()
    assert jwt.get_unverified_header(first)["kid"] == jwt.get_unverified_header(second)["kid"]
    assert jwt.decode(second, options={"verify_signature": False})["tid"] == fresh_server.tenant_id


def test_the_banner_shows_the_portal_and_where_the_credentials_are(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    for name in ("DICOMITE_BOOTSTRAP_ADMIN_USERNAME", "DICOMITE_BOOTSTRAP_ADMIN_PASSWORD"):
        server.env.pop(name)  # generated into bootstrap-credentials.json, as on a first start
    server.start()
    server.stop()
    log = server.log_text()
    credentials = server.data_dir / "bootstrap-credentials.json"
    saved = json.loads(credentials.read_text())
    banner = [line.split(":", 1) for line in log.splitlines() if line.startswith("  ")]
    lines = {name.strip(): value.strip() for name, value in banner}
    assert lines["Portal"] == f"{server.base_url}/portal/"
    assert lines["Portal sign-in"] == f"admin_username and admin_password in {credentials}"
    assert lines["Management client"] == (
        "DICOMITE_BOOTSTRAP_CLIENT_ID and DICOMITE_BOOTSTRAP_CLIENT_SECRET"
    )
    assert lines["CA to trust"] == server.ca_file
    assert "run other dicomite commands in a second terminal" in log
    assert saved["admin_password"] not in log and server.client_secret not in log


def test_help_shows_the_defaults() -> None:
    command = [sys.executable, "-m", "dicomite", "serve", "--help"]
    environment = {**os.environ, "COLUMNS": "200"}  # no help text wrapped in the middle
    result = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=60, env=environment
    )
    options = {line.split()[1]: line for line in result.stdout.splitlines() if "│ --" in line}
    expected = {
        "--data-dir": "[env DICOMITE_DATA_DIR; default: ./dicomite-data]",
        "--database-url": "[env DICOMITE_DATABASE_URL; default: SQLite in the data folder]",
        "--host": "[env DICOMITE_HOST; default: 127.0.0.1]",
        "--port": "[env DICOMITE_PORT; default: 8443]",
        "--public-url": "[default: https://localhost:PORT]",
        "--workers": f"[env DICOMITE_WORKERS; default: {Settings().workers}]",
        "--access-log": "[default: off]",
    }
    for option, default in expected.items():
        assert default in options[option], options[option]


# --- HTTP limits, on HTTP and HTTPS (issue 13, item 8) -----------------------------------------

HEADER_READ_TIMEOUT = 3  # seconds; the default is 30


@pytest.fixture(scope="module", params=["http", "https"])
def limited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {"DICOMITE_HTTP_HEADER_READ_TIMEOUT_SECONDS": str(HEADER_READ_TIMEOUT)}
    base = tmp_path_factory.mktemp(request.param)
    running = make_server(
        base, http=request.param == "http", extra_args=["--workers", "1"], extra_env=env
    )
    running.start()
    yield running
    running.stop()


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("localhost", server.port), timeout=30)
    if server.http:
        return sock
    context = ssl.create_default_context(cafile=server.ca_file)
    return context.wrap_socket(sock, server_hostname="localhost")


def _answer(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection (or resets it)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass
    return received


def test_a_megabyte_header_is_431(limited: Server) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 1024**2 + b"\r\n\r\n"
    with _connect(limited) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            sock.sendall(head)  # the server may answer and close before it has taken all
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_big_but_ordinary_headers_are_served(limited: Server) -> None:
    cookie = {"Cookie": "session=" + "c" * 8 * 1024}
    bearer = {"Authorization": "Bearer " + "t" * 16 * 1024}
    with limited.client() as client:
        assert client.get("/healthz", headers=cookie).status_code == 200
        # The token reaches the DICOM service, which refuses it as a token, not as a header.
        refused = client.get("/dicom/v1/studies", headers=bearer)
    assert refused.status_code == 401
    assert "invalid_token" in refused.headers["www-authenticate"]


def test_a_head_sent_a_byte_a_second_is_cut_off(limited: Server) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"s" * 100
    started = time.monotonic()
    with _connect(limited) as sock:
        for byte in head:  # one byte a second, until the server closes the connection
            if not _still_open(sock, bytes([byte])):
                break
        held = time.monotonic() - started
    assert held < HEADER_READ_TIMEOUT + 5, f"held for {held:.0f} s"


def _still_open(sock: socket.socket, byte: bytes) -> bool:
    """Send ``byte``, then wait a second for the server to answer or close."""
    try:
        sock.sendall(byte)
        if select.select([sock], [], [], 1.0)[0]:
            return bool(sock.recv(65536))
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        return False
    return True


def _failed_token_request(server: Server, forwarded_for: str) -> set[str]:
    """Ask for a token with a wrong secret, sending ``X-Forwarded-For``; the addresses the
    sign-in log records for failures."""
    form = {
        "grant_type": "client_credentials",
        "client_id": server.client_id,
        "client_secret": "wrong",
        "scope": "https://graph.microsoft.com/.default",
    }
    with server.client() as client:
        response = client.post(
            server.token_url, headers={"X-Forwarded-For": forwarded_for}, data=form
        )
    assert response.status_code == 401
    context = open_context(Settings(data_dir=server.data_dir))
    deadline = time.monotonic() + 20
    try:
        while True:
            with context.store.read() as session:
                rows = list_sign_ins(session, server.tenant_id, limit=100)
            logged = [row for row in rows if row.error_code != 0]
            if logged or time.monotonic() > deadline:
                return {row.ip_address for row in logged}
            time.sleep(0.5)
    finally:
        context.store.dispose()


def test_the_client_address_is_the_socket_peer(limited: Server) -> None:
    """X-Forwarded-For from an untrusted peer does not change the recorded address."""
    assert _failed_token_request(limited, "203.0.113.9") == {"127.0.0.1"}


def test_a_trusted_proxy_names_the_token_client(tmp_path: Path) -> None:
    """Behind a proxy named in --forwarded-allow-ips the sign-in log records the address the
    proxy forwarded, as the portal's sign-in does."""
    server = make_server(tmp_path, http=True, extra_args=["--forwarded-allow-ips", "127.0.0.1"])
    server.start()
    try:
        assert _failed_token_request(server, "198.51.100.4, 203.0.113.9") == {"203.0.113.9"}
    finally:
        server.stop()


def test_workers_default_to_one_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DICOMITE_WORKERS", raising=False)
    assert Settings().workers == "auto"
    assert Settings().effective_workers == len(os.sched_getaffinity(0))
    assert Settings(workers="3").effective_workers == 3  # type: ignore[arg-type]
    command = [sys.executable, "-m", "dicomite", "serve", "--help"]
    help_text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "N|auto" in help_text and "auto" in help_text.split("--workers", 1)[1][:300]
