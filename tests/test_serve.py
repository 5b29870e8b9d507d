"""``dicomite serve`` and ``dicomite info`` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt

from dicomite.bootstrap import open_context
from dicomite.identity.signins import list_sign_ins
from dicomite.settings import Settings
from tests.fixtures.server import Server, free_port, make_server


def test_graceful_shutdown_finishes_requests_and_flushes_the_log(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    server.start()
    data = {"grant_type": "client_credentials", "client_id": server.client_id,
            "client_secret": server.client_secret,
            "scope": "https://graph.microsoft.com/.default"}  # fmt: skip

    def request(_: int) -> int:
        with server.client() as client:
            return client.post(server.token_url, data=data).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(request, range(40)))
    assert statuses == [200] * 40
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal once shutdown is complete, so the status reports SIGTERM
    assert server.process.wait(timeout=20) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.log_text()
    context = open_context(Settings(data_dir=server.data_dir))
    with context.store.read() as session:
        logged = list_sign_ins(session, server.tenant_id, limit=1000)
    context.store.dispose()
    assert len(logged) == 40
    assert all(row.error_code == 0 and row.app_id == server.client_id for row in logged)


def test_info_json_lists_the_contract_fields(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dicomite", "info", "--json", "--data-dir", str(tmp_path),
         "--port", "9443"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
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
