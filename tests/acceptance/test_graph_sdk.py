"""The Microsoft Graph SDK for Python manages app registrations against a running server.

As with Entra ID, only the base URL changes (plus the allowed host and the CA).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx
import jwt
import pytest
from azure.identity.aio import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.applications.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody,
)
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.federated_identity_credential import FederatedIdentityCredential
from msgraph.generated.models.implicit_grant_settings import ImplicitGrantSettings
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.generated.models.public_client_application import PublicClientApplication
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.spa_application import SpaApplication
from msgraph.generated.models.web_application import WebApplication
from msgraph.generated.service_principals.service_principals_request_builder import (
    ServicePrincipalsRequestBuilder,
)
from msgraph_core import GraphClientFactory

from dicomite.identity.builtin import DICOM_APP_ID, DICOM_READWRITE
from tests.fixtures.directory import DICOM_SCOPE
from tests.fixtures.server import Server

pytestmark = pytest.mark.acceptance


def graph_client(server: Server, credential: ClientSecretCredential) -> GraphServiceClient:
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=["https://graph.microsoft.com/.default"], allowed_hosts=["localhost"]
    )
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=server.ca_file))
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{server.base_url}/graph/v1.0"
    return GraphServiceClient(request_adapter=adapter)


def management_credential(server: Server) -> ClientSecretCredential:
    return ClientSecretCredential(
        server.tenant_id,
        server.client_id,
        server.client_secret,
        authority=server.base_url,
        disable_instance_discovery=True,
        connection_verify=server.ca_file,
    )


async def register_and_consent(server: Server) -> dict[str, Any]:
    async with management_credential(server) as credential:
        graph = graph_client(server, credential)
        app = await graph.applications.post(Application(display_name="Graph SDK client"))
        assert app is not None and app.app_id and app.id
        principal = await graph.service_principals.post(ServicePrincipal(app_id=app.app_id))
        assert principal is not None and principal.id
        query = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
            filter=f"appId eq '{DICOM_APP_ID}'"
        )
        config = (
            ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetRequestConfiguration(
                query_parameters=query
            )
        )
        found = await graph.service_principals.get(request_configuration=config)
        assert found is not None and found.value and len(found.value) == 1
        dicom = found.value[0]
        assignment = await graph.service_principals.by_service_principal_id(
            principal.id
        ).app_role_assignments.post(
            AppRoleAssignment(
                principal_id=principal.id, resource_id=dicom.id, app_role_id=DICOM_READWRITE
            )
        )
        assert assignment is not None and assignment.resource_display_name
        secret = await graph.applications.by_application_id(app.id).add_password.post(
            AddPasswordPostRequestBody(password_credential=PasswordCredential(display_name="sdk"))
        )
        assert secret is not None and secret.secret_text and secret.key_id
        listed = await graph.applications.by_application_id(app.id).get()
        assert listed is not None and listed.password_credentials
        assert listed.password_credentials[0].secret_text is None
        assert listed.password_credentials[0].hint == secret.secret_text[:3]
        return {"app_id": app.app_id, "secret": secret.secret_text}


def test_graph_sdk_registers_an_app_that_gets_dicom_roles(server: Server) -> None:
    created = asyncio.run(register_and_consent(server))
    with server.client() as client:
        response = client.post(
            server.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": created["app_id"],
                "client_secret": created["secret"],
                "scope": DICOM_SCOPE,
            },
        )
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["roles"] == ["Dicom.ReadWrite"]


async def set_platforms(server: Server) -> Application:
    """The SDK's PATCH sends only the properties set on the model (the others stay as they
    are), so web's redirect URIs survive a PATCH of spa and publicClient."""
    async with management_credential(server) as credential:
        graph = graph_client(server, credential)
        web = WebApplication(
            redirect_uris=["https://app.example/signin-oidc"],
            implicit_grant_settings=ImplicitGrantSettings(enable_id_token_issuance=True),
        )
        app = await graph.applications.post(Application(display_name="Graph SDK app", web=web))
        assert app is not None and app.id
        changes = Application(
            spa=SpaApplication(redirect_uris=["http://localhost:3000"]),
            public_client=PublicClientApplication(redirect_uris=["myapp://auth"]),
            is_fallback_public_client=True,
        )
        await graph.applications.by_application_id(app.id).patch(changes)
        got = await graph.applications.by_application_id(app.id).get()
        assert got is not None
        return got


def test_graph_sdk_sets_spa_and_public_client_redirect_uris(server: Server) -> None:
    app = asyncio.run(set_platforms(server))
    assert app.spa is not None and app.spa.redirect_uris == ["http://localhost:3000"]
    assert app.public_client is not None and app.public_client.redirect_uris == ["myapp://auth"]
    assert app.is_fallback_public_client is True
    assert app.web is not None and app.web.redirect_uris == ["https://app.example/signin-oidc"]
    grants = app.web.implicit_grant_settings
    assert grants is not None and grants.enable_id_token_issuance is True
    assert grants.enable_access_token_issuance is False


async def manage_federated_credentials(server: Server) -> dict[str, Any]:
    """What a pipeline's setup script does with the SDK: trust a GitHub environment, list the
    trusts, narrow one, and remove it; a second credential of the same name is refused."""
    async with management_credential(server) as credential:
        graph = graph_client(server, credential)
        app = await graph.applications.post(Application(display_name="Graph SDK pipeline"))
        assert app is not None and app.id
        credentials = graph.applications.by_application_id(app.id).federated_identity_credentials
        trust = FederatedIdentityCredential(
            name="github-prod",
            issuer="https://token.actions.githubusercontent.com",
            subject="repo:contoso/imaging:environment:prod",
            audiences=["api://AzureADTokenExchange"],
            description="Deployments from GitHub",
        )
        created = await credentials.post(trust)
        assert created is not None and created.id
        duplicate: tuple[int | None, str | None] | None = None
        try:
            await credentials.post(trust)
        except ODataError as refused:
            duplicate = (refused.response_status_code, refused.error and refused.error.code)
        await credentials.by_federated_identity_credential_id(created.id).patch(
            FederatedIdentityCredential(subject="repo:contoso/imaging:environment:staging")
        )
        listed = await credentials.get()
        by_name = await credentials.by_federated_identity_credential_id("github-prod").get()
        await credentials.by_federated_identity_credential_id(created.id).delete()
        after = await credentials.get()
        assert listed is not None and listed.value is not None and after is not None
        return {
            "created": created,
            "duplicate": duplicate,
            "listed": [(c.name, c.subject, c.audiences) for c in listed.value],
            "by_name": by_name,
            "after": after.value,
        }


def test_graph_sdk_manages_federated_identity_credentials(server: Server) -> None:
    result = asyncio.run(manage_federated_credentials(server))
    created = result["created"]
    assert (created.name, created.description) == ("github-prod", "Deployments from GitHub")
    assert result["duplicate"] == (409, "Request_MultipleObjectsWithSameKeyValue")
    assert result["listed"] == [
        ("github-prod", "repo:contoso/imaging:environment:staging", ["api://AzureADTokenExchange"])
    ]
    assert result["by_name"].id == created.id
    assert result["after"] == []
