"""Secretless service clients: an app with no secret and no certificate, only a federated
identity credential trusting a test OpenID provider (GitHub-Actions-shaped and
Kubernetes-shaped tokens), gets DICOM tokens through azure-identity and msal, and uses them
with dicomweb-client."""

from __future__ import annotations

from pathlib import Path

import jwt
import msal
import pytest
import requests
from azure.identity import ClientAssertionCredential, WorkloadIdentityCredential
from dicomweb_client.api import DICOMwebClient

from tests.fixtures.dicom import make_dataset
from tests.fixtures.directory import DICOM_SCOPE, Admin, RegisteredApp
from tests.fixtures.oidc_issuer import OidcIssuer
from tests.fixtures.server import Server

pytestmark = pytest.mark.acceptance

GITHUB = "github"
CLUSTER = "cluster/7d1c9d5e"
REPOSITORY_SUBJECT = "repo:dicomite-org/pipelines:environment:prod"
SERVICE_ACCOUNT = "system:serviceaccount:imaging:uploader"


@pytest.fixture(scope="module")
def workload(federating_admin: Admin, oidc_issuer: OidcIssuer) -> RegisteredApp:
    app = federating_admin.register(roles=("Dicom.ReadWrite",), secret=False)
    federating_admin.add_federated(app.app_id, oidc_issuer.issuer(GITHUB), REPOSITORY_SUBJECT)
    federating_admin.add_federated(app.app_id, oidc_issuer.issuer(CLUSTER), SERVICE_ACCOUNT)
    return app


def claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def dicom_roundtrip(server: Server, token: str) -> None:
    session = requests.Session()
    session.verify = server.ca_file
    client = DICOMwebClient(
        url=f"{server.base_url}/dicom/v2",
        session=session,
        headers={"Authorization": f"Bearer {token}"},
    )
    dataset = make_dataset()
    client.store_instances([dataset])
    found = client.search_for_instances(study_instance_uid=dataset.StudyInstanceUID)
    assert len(found) == 1


def test_client_assertion_credential_with_a_github_token(
    federating: Server, workload: RegisteredApp, oidc_issuer: OidcIssuer
) -> None:
    credential = ClientAssertionCredential(
        federating.tenant_id,
        workload.app_id,
        lambda: oidc_issuer.mint(GITHUB, subject=REPOSITORY_SUBJECT),
        authority=federating.base_url,
        disable_instance_discovery=True,
        connection_verify=federating.ca_file,
    )
    token = credential.get_token(DICOM_SCOPE).token
    got = claims(token)
    assert got["appid"] == workload.app_id and got["appidacr"] == "2"
    assert got["roles"] == ["Dicom.ReadWrite"]
    dicom_roundtrip(federating, token)


def test_workload_identity_credential_from_a_token_file(
    federating: Server,
    workload: RegisteredApp,
    oidc_issuer: OidcIssuer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(oidc_issuer.mint(CLUSTER, subject=SERVICE_ACCOUNT, lifetime=3600))
    # What the Azure workload identity webhook puts in a pod's environment.
    monkeypatch.setenv("AZURE_CLIENT_ID", workload.app_id)
    monkeypatch.setenv("AZURE_TENANT_ID", federating.tenant_id)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", federating.base_url)
    credential = WorkloadIdentityCredential(
        disable_instance_discovery=True, connection_verify=federating.ca_file
    )
    first = credential.get_token(DICOM_SCOPE).token
    dicom_roundtrip(federating, first)
    # Kubernetes reuses its token for an hour: a second exchange with the same one works.
    again = WorkloadIdentityCredential(
        disable_instance_discovery=True, connection_verify=federating.ca_file
    ).get_token(DICOM_SCOPE)
    assert claims(again.token)["appid"] == workload.app_id


def test_msal_with_a_client_assertion(
    federating: Server, workload: RegisteredApp, oidc_issuer: OidcIssuer
) -> None:
    app = msal.ConfidentialClientApplication(
        workload.app_id,
        client_credential={
            "client_assertion": lambda: oidc_issuer.mint(GITHUB, subject=REPOSITORY_SUBJECT)
        },
        authority=federating.authority,
        instance_discovery=False,
        verify=federating.ca_file,
    )
    result = app.acquire_token_for_client(scopes=[DICOM_SCOPE])
    assert "access_token" in result, result
    dicom_roundtrip(federating, result["access_token"])
