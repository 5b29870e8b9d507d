"""The Azure CLI against a running server, with the README's commands: ``az cloud register``
reads the cloud from ``/metadata/endpoints``, ``az login --service-principal`` gets a token for
the resource manager and lists ``/subscriptions`` with it, ``az account get-access-token`` gets
tokens the DICOM service accepts, and azure-identity's ``AzureCliCredential`` runs that ``az``."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.identity import AzureCliCredential

from dicomite.arm.resources import subscription_id
from tests.fixtures.azure_cli import CLOUD, AzureCli, azure_cli_env
from tests.fixtures.directory import DICOM, DICOM_SCOPE, Admin, RegisteredApp, make_certificate
from tests.fixtures.oidc_issuer import GITHUB_AUDIENCE, OidcIssuer
from tests.fixtures.server import Server
from tests.graph.helpers import claims, graph_client

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
            "login",
            "--service-principal",
            "--username",
            app.app_id,
            "--password",
            app.secret,
            "--tenant",
            server.tenant_id,
        )
    )


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
        "login",
        "--service-principal",
        "--username",
        app.app_id,
        "--certificate",
        str(pem),
        "--tenant",
        server.tenant_id,
    )
    assert account["id"] == subscription_id(server.tenant_id)
    token = dicom_token(azure_cli)
    assert claims(token)["appidacr"] == "2"  # a certificate, not a secret
    assert claims(token)["roles"] == ["Dicom.Read"]
    assert studies(server, token) in (200, 204)


def test_login_with_a_wrong_secret_shows_the_aadsts_error(
    azure_cli: AzureCli, server: Server, secret_app: RegisteredApp
) -> None:
    result = azure_cli.run(
        "login",
        "--service-principal",
        "--username",
        secret_app.app_id,
        "--password",
        "wrong" * 8,
        "--tenant",
        server.tenant_id,
        check=False,
    )
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


# --- az login --federated-token: a token of another OpenID provider, trusted by the app ------


def test_login_with_a_federated_token(
    az_executable: Path,
    federating: Server,
    federating_admin: Admin,
    oidc_issuer: OidcIssuer,
    tmp_path: Path,
) -> None:
    server = federating
    app = federating_admin.register(roles=("Dicom.Read",), secret=False)
    subject = "repo:contoso/imaging:environment:production"
    credential = {
        "name": "pipeline",
        "issuer": oidc_issuer.issuer("github"),
        "subject": subject,
        "audiences": [GITHUB_AUDIENCE],
    }
    with graph_client(server, server.graph_token()) as graph:
        path = f"applications/{app.object_id}/federatedIdentityCredentials"
        assert graph.post(path, json=credential).status_code == 201
    az = AzureCli(az_executable, azure_cli_env(server, tmp_path / "azure"))
    az.register_cloud(server)
    (account,) = az.json(
        "login",
        "--service-principal",
        "--username",
        app.app_id,
        "--federated-token",
        oidc_issuer.mint("github", subject=subject),
        "--tenant",
        server.tenant_id,
    )
    assert account["id"] == subscription_id(server.tenant_id)
    token = dicom_token(az)
    assert claims(token)["roles"] == ["Dicom.Read"]
    assert studies(server, token) in (200, 204)
