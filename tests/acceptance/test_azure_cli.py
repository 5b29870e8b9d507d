"""The Azure CLI against a running server, with the README's commands: ``az cloud register``
reads the cloud from ``/metadata/endpoints``, ``az login --service-principal`` gets a token for
the resource manager and lists ``/subscriptions`` with it, ``az account get-access-token`` gets
tokens the DICOM service accepts, and azure-identity's ``AzureCliCredential`` runs that ``az``."""

from __future__ import annotations

import http.server
import importlib.util
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import jwt
import pytest
from azure.identity import AzureCliCredential
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from dicomite.arm.resources import subscription_id
from dicomite.clock import utcnow
from tests.fixtures.azure_cli import CLOUD, AzureCli
from tests.fixtures.directory import DICOM, DICOM_SCOPE, Admin, RegisteredApp, make_certificate
from tests.fixtures.server import Server
from tests.graph.helpers import claims

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module")
def secret_app(admin: Admin) -> RegisteredApp:
    return admin.register(roles=("Dicom.ReadWrite",))


@pytest.fixture(scope="module")
def cert_app(admin: Admin, tmp_path_factory: pytest.TempPathFactory) -> tuple[RegisteredApp, Path]:
    """An app with a certificate only, and the PEM file (key + certificate) az logs in with;
    the path is absolute: az keeps it and reads it again for every token, from any folder."""
    app = admin.register(roles=("Dicom.Read",), secret=False)
    pair = make_certificate()
    admin.add_certificate(app.app_id, pair.certificate_pem)
    path = tmp_path_factory.mktemp("az-certificate").resolve() / "client.pem"
    path.write_bytes(pair.private_key_pem + pair.certificate_pem)
    return app, path


def login_with_secret(az: AzureCli, server: Server, app: RegisteredApp) -> list[dict[str, object]]:
    assert app.secret is not None
    return list(
        az.json(
            "login", "--service-principal", "--username", app.app_id,
            "--password", app.secret, "--tenant", server.tenant_id,
        )
    )  # fmt: skip


def dicom_token(az: AzureCli) -> str:
    return str(az.json("account", "get-access-token", "--resource", DICOM)["accessToken"])


def studies(server: Server, token: str) -> int:
    with server.client() as client:
        response = client.get("/dicom/v2/studies", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def test_cloud_register_reads_the_endpoints_from_the_server(
    azure_cli: AzureCli, server: Server
) -> None:
    cloud = azure_cli.json("cloud", "show", "--name", CLOUD)
    assert cloud["isActive"] is True
    assert cloud["endpoints"]["activeDirectory"] == server.base_url
    assert cloud["endpoints"]["activeDirectoryResourceId"] == "https://management.core.windows.net/"


def test_login_with_a_secret_finds_the_deployment_subscription(
    azure_cli: AzureCli, server: Server, secret_app: RegisteredApp
) -> None:
    (account,) = login_with_secret(azure_cli, server, secret_app)
    assert account["id"] == subscription_id(server.tenant_id)
    assert account["tenantId"] == server.tenant_id
    assert account["cloudName"] == CLOUD
    assert account["state"] == "Enabled"
    assert account["user"] == {"name": secret_app.app_id, "type": "servicePrincipal"}


def test_access_token_for_the_dicom_service(
    azure_cli: AzureCli, server: Server, secret_app: RegisteredApp
) -> None:
    login_with_secret(azure_cli, server, secret_app)
    token = dicom_token(azure_cli)
    assert claims(token)["aud"] == DICOM
    assert claims(token)["roles"] == ["Dicom.ReadWrite"]
    assert studies(server, token) in (200, 204)


def test_access_token_for_the_resource_manager_reads_only_it(
    azure_cli: AzureCli, server: Server, secret_app: RegisteredApp
) -> None:
    login_with_secret(azure_cli, server, secret_app)
    token = azure_cli.json("account", "get-access-token")["accessToken"]
    assert claims(token)["aud"] == "https://management.core.windows.net/"
    assert studies(server, token) == 401


def test_login_with_a_certificate(
    azure_cli: AzureCli, server: Server, cert_app: tuple[RegisteredApp, Path]
) -> None:
    app, pem = cert_app
    (account,) = azure_cli.json(
        "login", "--service-principal", "--username", app.app_id,
        "--certificate", str(pem), "--tenant", server.tenant_id,
    )  # fmt: skip
    assert account["id"] == subscription_id(server.tenant_id)
    token = dicom_token(azure_cli)
    assert claims(token)["appidacr"] == "2"  # a certificate, not a secret
    assert claims(token)["roles"] == ["Dicom.Read"]
    assert studies(server, token) in (200, 204)


def test_login_with_a_wrong_secret_shows_the_aadsts_error(
    azure_cli: AzureCli, server: Server, secret_app: RegisteredApp
) -> None:
    result = azure_cli.run(
        "login", "--service-principal", "--username", secret_app.app_id,
        "--password", "wrong" * 8, "--tenant", server.tenant_id, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "AADSTS7000215" in result.stderr


def test_azure_cli_credential_gets_its_token_from_az(
    azure_cli: AzureCli,
    server: Server,
    secret_app: RegisteredApp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    login_with_secret(azure_cli, server, secret_app)
    for name, value in azure_cli.env.items():
        monkeypatch.setenv(name, value)  # AzureCliCredential runs az with this process's env
    monkeypatch.setenv("PATH", f"{azure_cli.executable.parent}:{azure_cli.env['PATH']}")
    token = AzureCliCredential(process_timeout=60).get_token(DICOM_SCOPE).token
    assert claims(token)["roles"] == ["Dicom.ReadWrite"]
    assert studies(server, token) in (200, 204)


# --- az login --federated-token: a token of an external issuer trusted by the app --------------


class _Issuer(http.server.BaseHTTPRequestHandler):
    """An OpenID issuer on loopback (Entra-style federation allows http there): discovery and
    the JWKS of the key in ``documents``."""

    documents: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.documents.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body or b"{}")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def issuer() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    running = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Issuer)
    url = f"http://localhost:{running.server_address[1]}"
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "k1", "use": "sig"}
    _Issuer.documents = {
        "/.well-known/openid-configuration": json.dumps(
            {
                "issuer": url,
                "jwks_uri": f"{url}/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        ).encode(),
        "/keys": json.dumps({"keys": [jwk]}).encode(),
    }
    threading.Thread(target=running.serve_forever, daemon=True).start()
    yield url, key
    running.shutdown()
    running.server_close()


@pytest.mark.skipif(
    importlib.util.find_spec("dicomite.identity.federated_credentials") is None,
    reason="federated identity credentials are not built yet: az login --federated-token has "
    "no credential to match its token against",
)
def test_login_with_a_federated_token(
    azure_cli: AzureCli,
    server: Server,
    admin: Admin,
    issuer: tuple[str, rsa.RSAPrivateKey],
) -> None:
    from dicomite.identity import directory, federated_credentials

    url, key = issuer
    app = admin.register(roles=("Dicom.Read",), secret=False)
    subject = "system:serviceaccount:imaging:uploader"
    with admin.context.store.write() as session:
        application = directory.get_application_by_app_id(session, server.tenant_id, app.app_id)
        federated_credentials.add_federated_credential(
            session, application, utcnow(), name="cluster", issuer=url, subject=subject
        )
    now = int(time.time())
    external = jwt.encode(
        {"iss": url, "sub": subject, "aud": "api://AzureADTokenExchange", "iat": now,
         "nbf": now, "exp": now + 600, "jti": str(uuid.uuid4())},
        key, algorithm="RS256", headers={"kid": "k1"},
    )  # fmt: skip
    (account,) = azure_cli.json(
        "login", "--service-principal", "--username", app.app_id,
        "--federated-token", external, "--tenant", server.tenant_id,
    )  # fmt: skip
    assert account["id"] == subscription_id(server.tenant_id)
    token = dicom_token(azure_cli)
    assert claims(token)["roles"] == ["Dicom.Read"]
    assert studies(server, token) in (200, 204)
