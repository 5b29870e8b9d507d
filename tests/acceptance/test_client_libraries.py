"""Microsoft's own client libraries get tokens from a running server over HTTPS.

Only base URLs change compared with Entra ID: ``authority=`` the server, instance discovery
off, and the server's CA passed as ``verify=`` / ``connection_verify=``.
"""

from __future__ import annotations

from pathlib import Path

import jwt
import msal
import pytest
from azure.identity import CertificateCredential, ClientSecretCredential
from azure.identity.aio import CertificateCredential as AsyncCertificateCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential

from tests.fixtures.directory import (
    DICOM,
    DICOM_SCOPE,
    Admin,
    CertificatePair,
    RegisteredApp,
    make_certificate,
)
from tests.fixtures.loops import run_async
from tests.fixtures.server import Server

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module")
def secret_app(admin: Admin) -> RegisteredApp:
    return admin.register(roles=("Dicom.ReadWrite",))


@pytest.fixture(scope="module")
def cert_app(admin: Admin) -> tuple[RegisteredApp, CertificatePair]:
    app = admin.register(roles=("Dicom.Read",), secret=False)
    cert = make_certificate()
    admin.add_certificate(app.app_id, cert.certificate_pem)
    return app, cert


@pytest.fixture(scope="module")
def pem_file(
    cert_app: tuple[RegisteredApp, CertificatePair], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    _, cert = cert_app
    path = tmp_path_factory.mktemp("cert") / "client.pem"
    path.write_bytes(cert.private_key_pem + cert.certificate_pem)
    return path


def roles_of(token: str) -> list[str]:
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == DICOM
    return list(claims.get("roles", []))


def msal_app(server: Server, app_id: str, credential: object) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        app_id,
        client_credential=credential,
        authority=server.authority,
        instance_discovery=False,
        verify=server.ca_file,
    )


def test_msal_with_secret(server: Server, secret_app: RegisteredApp) -> None:
    result = msal_app(server, secret_app.app_id, secret_app.secret).acquire_token_for_client(
        scopes=[DICOM_SCOPE]
    )
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"
    assert roles_of(result["access_token"]) == ["Dicom.ReadWrite"]


def test_msal_reports_a_wrong_secret(server: Server, secret_app: RegisteredApp) -> None:
    result = msal_app(server, secret_app.app_id, "wrong" * 8).acquire_token_for_client(
        scopes=[DICOM_SCOPE]
    )
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]


def test_msal_with_certificate_thumbprint(
    server: Server, cert_app: tuple[RegisteredApp, CertificatePair]
) -> None:
    app, cert = cert_app
    credential = {"private_key": cert.private_key_pem.decode(), "thumbprint": cert.thumbprint_hex}
    client = msal_app(server, app.app_id, credential)
    result = client.acquire_token_for_client(scopes=[DICOM_SCOPE])
    assert roles_of(result["access_token"]) == ["Dicom.Read"]
    # msal reuses its assertion for other resources: that must keep working.
    other = client.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in other, other


def test_msal_with_public_certificate_uses_ps256(
    server: Server, cert_app: tuple[RegisteredApp, CertificatePair]
) -> None:
    app, cert = cert_app
    credential = {
        "private_key": cert.private_key_pem.decode(),
        "public_certificate": cert.certificate_pem.decode(),
    }
    result = msal_app(server, app.app_id, credential).acquire_token_for_client(scopes=[DICOM_SCOPE])
    assert roles_of(result["access_token"]) == ["Dicom.Read"]


def test_azure_identity_secret_sync(server: Server, secret_app: RegisteredApp) -> None:
    credential = ClientSecretCredential(
        server.tenant_id,
        secret_app.app_id,
        secret_app.secret,
        authority=server.base_url,
        disable_instance_discovery=True,
        connection_verify=server.ca_file,
    )
    token = credential.get_token(DICOM_SCOPE)
    assert roles_of(token.token) == ["Dicom.ReadWrite"]
    assert token.expires_on > 0


def test_azure_identity_secret_async(server: Server, secret_app: RegisteredApp) -> None:
    async def get() -> str:
        credential = AsyncClientSecretCredential(
            server.tenant_id,
            secret_app.app_id,
            secret_app.secret,
            authority=server.base_url,
            disable_instance_discovery=True,
            connection_verify=server.ca_file,
        )
        async with credential:
            return (await credential.get_token(DICOM_SCOPE)).token

    assert roles_of(run_async(get)) == ["Dicom.ReadWrite"]


def test_azure_identity_certificate_sync(
    server: Server, cert_app: tuple[RegisteredApp, CertificatePair], pem_file: Path
) -> None:
    app, _ = cert_app
    credential = CertificateCredential(
        server.tenant_id,
        app.app_id,
        certificate_path=str(pem_file),
        authority=server.base_url,
        disable_instance_discovery=True,
        connection_verify=server.ca_file,
    )
    assert roles_of(credential.get_token(DICOM_SCOPE).token) == ["Dicom.Read"]


def test_azure_identity_certificate_async(
    server: Server, cert_app: tuple[RegisteredApp, CertificatePair], pem_file: Path
) -> None:
    app, _ = cert_app

    async def get() -> str:
        credential = AsyncCertificateCredential(
            server.tenant_id,
            app.app_id,
            certificate_path=str(pem_file),
            authority=server.base_url,
            disable_instance_discovery=True,
            connection_verify=server.ca_file,
        )
        async with credential:
            return (await credential.get_token(DICOM_SCOPE)).token

    assert roles_of(run_async(get)) == ["Dicom.Read"]


def test_tenant_domain_works_as_authority(server: Server, secret_app: RegisteredApp) -> None:
    client = msal.ConfidentialClientApplication(
        secret_app.app_id,
        client_credential=secret_app.secret,
        authority=f"{server.base_url}/dicomite.localhost",
        instance_discovery=False,
        verify=server.ca_file,
    )
    assert "access_token" in client.acquire_token_for_client(scopes=[DICOM_SCOPE])
