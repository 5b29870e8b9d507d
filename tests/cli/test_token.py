"""``dicomite token get`` against a real HTTPS server, after setting the app up with the CLI (run
in this process but where a test says otherwise)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dicomite.cli.main import app
from tests.cli.conftest import make_certificate, unique
from tests.fixtures.server import Server

DICOM_SCOPE = "https://dicom.healthcareapis.azure.com/.default"


def cli_json(server: Server, *args: str) -> Any:
    return json.loads(server.invoke(*args, "--json").stdout)


@pytest.fixture(scope="module")
def dicom_writer(server: Server) -> dict[str, str]:
    """An app registered, permitted, consented and given a secret, all with the CLI."""
    app = cli_json(server, "app", "create", unique("writer"))["appId"]
    server.invoke(
        "app", "permission", "add", app, "--api", "dicom", "--permission", "Dicom.ReadWrite"
    )
    server.invoke("app", "consent", app)
    secret = cli_json(server, "app", "secret", "add", app, "--description", "test")
    return {"app_id": app, "secret": secret["secretText"], "key_id": secret["keyId"]}


def token_get(server: Server, *args: str, check: bool = True) -> Any:
    return server.invoke("token", "get", "--authority", server.authority, *args, check=check)


def test_secret_token_has_the_consented_role(server: Server, dicom_writer: dict[str, str]) -> None:
    result = token_get(
        server,
        "--client-id",
        dicom_writer["app_id"],
        "--client-secret",
        dicom_writer["secret"],
        "--decode",
    )
    claims = json.loads(result.stdout)
    assert claims["roles"] == ["Dicom.ReadWrite"]
    assert claims["appid"] == dicom_writer["app_id"]
    assert claims["appidacr"] == "1"
    assert claims["aud"] == "https://dicom.healthcareapis.azure.com"


def test_token_is_printed_raw_for_scripts(server: Server, dicom_writer: dict[str, str]) -> None:
    """The real ``dicomite`` program, its output piped (the other tests run it in-process)."""
    result = server.cli(
        "token",
        "get",
        "--authority",
        server.authority,
        "--client-id",
        dicom_writer["app_id"],
        "--client-secret",
        dicom_writer["secret"],
        "--scope",
        DICOM_SCOPE,
    )
    token = result.stdout.strip()
    assert token.count(".") == 2
    assert "\n" not in token


def test_default_authority_comes_from_the_data_dir(
    server: Server, dicom_writer: dict[str, str]
) -> None:
    """Without --authority the deployment's tenant and public URL are used."""
    result = server.invoke(
        "token",
        "get",
        "--client-id",
        dicom_writer["app_id"],
        "--client-secret",
        dicom_writer["secret"],
        "--decode",
        check=False,
    )
    # The server runs on a free port, not the default 8443, so the request cannot connect;
    # what matters is that the authority was built from this deployment's tenant.
    assert result.returncode == 1
    assert f"https://localhost:8443/{server.tenant_id}/oauth2/v2.0/token" in result.stderr


def test_certificate_token(server: Server, tmp_path: Path) -> None:
    app = cli_json(server, "app", "create", unique("cert-client"))["appId"]
    server.invoke("app", "permission", "add", app, "--api", "dicom", "--permission", "Dicom.Read")
    server.invoke("app", "consent", app)
    pair = make_certificate(tmp_path)
    server.invoke("app", "cert", "add", app, str(pair.certificate))
    result = token_get(
        server,
        "--client-id",
        app,
        "--certificate",
        str(pair.certificate),
        "--private-key",
        str(pair.private_key),
        "--decode",
    )
    claims = json.loads(result.stdout)
    assert claims["roles"] == ["Dicom.Read"]
    assert claims["appidacr"] == "2"
    combined = tmp_path / "combined.pem"
    combined.write_bytes(pair.private_key.read_bytes() + pair.certificate.read_bytes())
    again = token_get(server, "--client-id", app, "--certificate", str(combined), "--decode")
    assert json.loads(again.stdout)["roles"] == ["Dicom.Read"]


def test_unregistered_certificate_is_refused(server: Server, tmp_path: Path) -> None:
    app = cli_json(server, "app", "create", unique("cert-client"))["appId"]
    pair = make_certificate(tmp_path)
    result = token_get(
        server,
        "--client-id",
        app,
        "--certificate",
        str(pair.certificate),
        "--private-key",
        str(pair.private_key),
        check=False,
    )
    assert result.returncode == 1
    assert "AADSTS700027" in result.stderr


def test_wrong_secret_prints_the_aadsts_error(server: Server, dicom_writer: dict[str, str]) -> None:
    result = token_get(
        server, "--client-id", dicom_writer["app_id"], "--client-secret", "x" * 40, check=False
    )
    assert result.returncode == 1
    assert "AADSTS7000215" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_either_a_secret_or_a_certificate(server: Server) -> None:
    result = token_get(server, "--client-id", "x", check=False)
    assert result.returncode == 1
    assert "--client-secret or --certificate" in result.stderr


def test_untrusted_server_is_refused(server: Server, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(make_certificate(tmp_path).certificate.read_bytes())
    result = token_get(
        server,
        "--client-id",
        "x",
        "--client-secret",
        "y" * 20,
        "--ca-file",
        str(other_ca),
        check=False,
    )
    assert result.returncode == 1
    assert "Cannot reach" in result.stderr


def test_sign_ins_show_the_requests(server: Server, dicom_writer: dict[str, str]) -> None:
    app = dicom_writer["app_id"]
    token_get(server, "--client-id", app, "--client-secret", dicom_writer["secret"])
    token_get(server, "--client-id", app, "--client-secret", "z" * 40, check=False)
    deadline = time.monotonic() + 10
    while True:  # the server writes its sign-in log in batches, a quarter second apart
        rows = cli_json(server, "signins", "--app", app)
        codes = {r["errorCode"] for r in rows}
        if {0, 7000215} <= codes or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert {0, 7000215} <= codes
    success = next(r for r in rows if r["errorCode"] == 0)
    assert success["credentialKeyId"] == dicom_writer["key_id"]
    assert success["credentialType"] == "secret"
    failures = cli_json(server, "signins", "--app", app, "--failures")
    assert failures
    assert all(r["result"].startswith("AADSTS7000215") for r in failures)
    assert "AADSTS7000215" in server.invoke("signins", "--app", app, "--failures").stdout


def test_secret_from_stdin_in_process(server: Server, dicom_writer: dict[str, str]) -> None:
    """``--client-secret -`` keeps the secret out of the shell history and the process list."""
    args = [
        "token",
        "get",
        "--client-id",
        dicom_writer["app_id"],
        "--client-secret",
        "-",
        "--authority",
        server.authority,
        "--ca-file",
        server.ca_file,
        "--decode",
    ]
    result = CliRunner().invoke(app, args, input=dicom_writer["secret"] + "\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["roles"] == ["Dicom.ReadWrite"]
